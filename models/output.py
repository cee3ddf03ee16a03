"""The one output type of every forecaster."""
from typing import NamedTuple, Optional

import torch


class Forecast(NamedTuple):
    """mean [B, T*O, C]: row n*O + t predicts time (n+1)*P + t of the input from its tokens <= n;
    logvar: the per-value log-variance of a stochastic model, None for a point model;
    cache: the KV cache the call extended (the same object that was passed in), or None.
    A NamedTuple so that DataParallel can gather it."""
    mean: torch.Tensor
    logvar: Optional[torch.Tensor] = None
    cache: Optional[object] = None

"""The one output type of every forecaster, and the readout of a stochastic head."""
from typing import NamedTuple, Optional

import torch

from layers.instance_norm import denormalize, denormalize_logvar

LOGVAR_MIN, LOGVAR_MAX, LOGVAR_BIAS_INIT = -10.0, 10.0, -2.0


class Forecast(NamedTuple):
    """mean [B, T*O, C]: row n*O + t predicts time (n+1)*P + t of the input from its tokens <= n
    (a one-call model has one output token, the window's last: O = patches_per_call * P);
    logvar: the per-value log-variance of a stochastic model, None for a point model;
    cache: the KV cache the call extended (the same object that was passed in), or None.
    A NamedTuple so that DataParallel can gather it."""
    mean: torch.Tensor
    logvar: Optional[torch.Tensor] = None
    cache: Optional[object] = None


def is_one_call(model):
    """A model that forecasts the patches_per_call patches after its window in ONE call and takes no KV cache
    (its class declares one_call_forecaster): a draft of one call per round, never a speculative target."""
    return getattr(model, "one_call_forecaster", False)


def gaussian_forecast(mean, logvar, stats, cache=None):
    """A stochastic head's Forecast (model.md 6.1): logvar clamped to [-10, 10] in normalised space,
    then mean <- mean*sigma + mu and logvar <- logvar + 2 log sigma under instance norm (per step
    when the statistics are per step)."""
    logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
    if stats is not None:
        mean, logvar = denormalize(mean, stats), denormalize_logvar(logvar, stats)
    return Forecast(mean, logvar, cache)

"""Wall-clock timing that counts queued CUDA kernels: synchronise at both ends on CUDA."""
import time

import torch


class Stopwatch:
    """with Stopwatch(device) as watch: ...   then watch.seconds."""

    def __init__(self, device):
        self.sync = torch.device(device).type == "cuda"
        self.device = device

    def _now(self):
        if self.sync:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def __enter__(self):
        self.start = self._now()
        return self

    def __exit__(self, *exc):
        self.seconds = self._now() - self.start


def timed(fn, device):
    """(fn(), wall seconds of the call)."""
    with Stopwatch(device) as watch:
        result = fn()
    return result, watch.seconds

"""Section timers of generation (--trace_inference_breakdown, speculative.md 6 and 7).

Disabled, they cost nothing: no clock, no device synchronisation (a synchronise per section would
tax the speculative side that the baseline does not pay). Enabled, every section is timed with the
device synchronised at both ends.
  draft: draft forward + drawing the proposal, per batched draft step.
  prep_verify: building the verify input.  target_verify: the target call.
  target_sample: drawing bonus/correction patches from p (lossless; n = rounds that drew).
  accept_cpu: log-ratios, uniforms, decisions and the ragged bookkeeping.
"""
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from utils.timing import Stopwatch


@dataclass
class SectionTimer:
    device: object = "cpu"
    enabled: bool = False
    t_draft_total: float = 0.0
    n_draft_calls: int = 0
    t_prep_verify_total: float = 0.0
    t_target_verify_total: float = 0.0
    n_target_verify_calls: int = 0
    t_target_sample_total: float = 0.0
    n_target_sample_calls: int = 0
    t_accept_cpu_total: float = 0.0

    def timed(self, section):
        return self._timed(section) if self.enabled else nullcontext()

    @contextmanager
    def _timed(self, section):
        with Stopwatch(self.device) as watch:
            yield
        total = f"t_{section}_total"
        setattr(self, total, getattr(self, total) + watch.seconds)
        count = f"n_{section}_calls"
        if hasattr(self, count):
            setattr(self, count, getattr(self, count) + 1)

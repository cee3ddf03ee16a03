"""The `sliding` rollout (speculative.md 2, 3): every prediction recomputes a window of the last N
patches (L points) from scratch, as OpenLTM does; no cache. Verification stacks the k_eff+1 windows
of a sample (prefix, prefix + x1, ..., prefix + x1..x_keff, each cut to its last L points) along the
batch axis of ONE target call. Instance normalisation is recomputed on every window. Each step
appends O points (target-only decoding also works when O != P, as in OpenLTM)."""
import torch

from speculative.rollout import Rollout, last_patch

NAN = float("nan")


class SlidingRollout(Rollout):
    def _windows(self, rows, ends):
        """The L points before ends[r] of sample rows[r], as model input [R, L, C]."""
        points = ends[:, None] - self.context_len + torch.arange(self.context_len, device=ends.device)
        return self.seq[rows[:, None], points]

    def draft_next(self, sub):
        ends = self.length[sub] + self.proposed[sub] * self.out_len
        return last_patch(self.draft(self._windows(sub, ends)), self.out_len)

    def verify(self, k_eff):
        with self.tracer.timed("prep_verify"):
            slots = torch.arange(int(k_eff.max()) + 1, device=k_eff.device)
            valid = slots[None] <= k_eff[:, None]
            rows, offsets = valid.nonzero(as_tuple=True)
            windows = self._windows(rows, self.length[rows] + offsets * self.out_len)
        with self.tracer.timed("target_verify"):
            mean = last_patch(self.target(windows), self.out_len).mean
        mu_p = mean.new_full(valid.shape + mean.shape[1:], NAN)
        mu_p[valid] = mean
        return mu_p

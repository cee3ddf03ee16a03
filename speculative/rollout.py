"""What the two rollouts share (speculative.md 2, 2.1, 3): the base class Rollout; rollout_options.py chooses one.

A rollout holds a batch being decoded. Per sample, `seq` [A, capacity, C] holds its context (L
points), then the patches emitted so far (O points each), then this round's proposals; `length`
counts context + emitted points, `proposed` this round's proposals. Every rollout answers:
  draft_next(sub)   the draft's Forecast [A', O, C] of the patch after the sequence so far
                    (committed + this round's proposals), for the rows sub;
  draft_block(sub, k)   for a one-call draft (models/output.py is_one_call): its Forecast [A', k, O, C] of
                    the k patches after the committed sequence, from ONE call on the window of the
                    last L committed points (both rollouts: a one-call draft keeps no cache);
  add_proposal(sub, x)   append a proposal [A', O, C] for the rows sub;
  verify(k_eff)     ONE target call: μ_p [A, K+1, O, C], μ_p[a, i] the prediction after the
                    committed points + proposals 1..i, for i <= k_eff[a] (NaN beyond);
  commit(final, n_accepted)   keep n_accepted[a] proposals, then the final patch (correction or bonus);
  retain(keep)      only the rows `keep` go on (finished samples leave, costing nothing more);
and rewind() forgets an unfinished round (used to measure step costs).
`sliding` recomputes a window of the last L points at every call; `cached` keeps KV caches (and needs
O = P). Target-only decoding is verify(0) then commit, patch after patch.
"""
import torch

from models.output import Forecast, is_one_call


class Rollout:
    def __init__(self, target, draft, x, n_patches, max_k, tracer):
        self.target, self.draft, self.tracer = target, draft, tracer
        self.patch_len, self.context_len = target.patch_len, x.shape[1]
        self.out_len = target.output_len
        capacity = self.context_len + (n_patches + max_k) * self.out_len
        self.seq = x.new_zeros((x.shape[0], capacity, x.shape[2]))
        self.seq[:, :self.context_len] = x
        self.length = torch.full((x.shape[0],), self.context_len, dtype=torch.long, device=x.device)
        self.proposed = torch.zeros_like(self.length)

    @property
    def one_call_draft(self):
        return self.draft is not None and is_one_call(self.draft)

    @property
    def n_emitted(self):
        return (self.length - self.context_len) // self.out_len

    def emitted(self, rows, n_patches):
        """The first n_patches emitted patches of rows: [R, n_patches * O, C]."""
        return self.seq[rows, self.context_len:self.context_len + n_patches * self.out_len]

    def _points(self, starts):
        """Indices [A, O] of the O points from each row's start."""
        return starts[:, None] + torch.arange(self.out_len, device=starts.device)

    def _windows(self, rows, ends):
        """The L points before ends[r] of sample rows[r], as model input [R, L, C]."""
        points = ends[:, None] - self.context_len + torch.arange(self.context_len, device=ends.device)
        return self.seq[rows[:, None], points]

    def draft_block(self, sub, k):
        out = self.draft(self._windows(sub, self.length[sub]))
        return Forecast(*(None if t is None else t[:, :k * self.out_len].unflatten(1, (k, self.out_len))
                          for t in out[:2]))

    def last_patches(self):
        """Each sample's last committed patch [A, O, C]."""
        rows = torch.arange(len(self.length), device=self.seq.device)[:, None]
        return self.seq[rows, self._points(self.length - self.out_len)]

    def add_proposal(self, sub, proposal):
        starts = self.length[sub] + self.proposed[sub] * self.out_len
        self.seq[sub[:, None], self._points(starts)] = proposal.to(self.seq.dtype)
        self.proposed[sub] += 1

    def commit(self, final, n_accepted):
        rows = torch.arange(len(self.length), device=self.seq.device)[:, None]
        self.seq[rows, self._points(self.length + n_accepted * self.out_len)] = final.to(self.seq.dtype)
        self.length += (n_accepted + 1) * self.out_len
        self.proposed.zero_()

    def retain(self, keep):
        self.seq, self.length, self.proposed = self.seq[keep], self.length[keep], self.proposed[keep]

    def rewind(self):
        self.proposed.zero_()


def last_patch(forecast, out_len):
    """The prediction of each window's last token: a Forecast of [B, O, C] tensors."""
    return Forecast(forecast.mean[:, -out_len:],
                    None if forecast.logvar is None else forecast.logvar[:, -out_len:])

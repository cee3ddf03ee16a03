"""The `cached` rollout (speculative.md 2.1): target and draft each keep a KV cache
(layers/kv_cache.py) of every committed patch but the last one, the pending patch.

- Prefill: the context runs through each model once, normalised with the context window's statistics
  (as `sliding`'s first step); the cache is then cropped to N-1 patches, so the last context patch is
  pending.
- Statistics of every later step (--cache_stats): `trailing`, the mean/std of the L points ending with
  that step (the window `sliding` would normalise), one set per step fed; `frozen`, the context
  window's. Keys and values already cached stay as they were computed.
- Verify: ONE causal target call over the pending patch and the k_eff proposals, (k_eff+1)·C new
  tokens on top of the cache. The prediction at the pending patch is μ_p,1, at proposal i μ_p,i+1.
- Draft: each draft step feeds what its cache lacks (the pending patch, or after plain target
  rounds every patch emitted since) plus the proposals so far, and predicts the next proposal.
- Commit: both caches are cropped to the committed patches but the new pending one (correction or
  bonus), which the next round feeds first. The draft never fed its last proposal: when all were
  accepted it feeds it in the next round together with the bonus.
A one-call draft (models/output.py is_one_call) keeps no cache: it forecasts each round's proposals from the
window of the last L committed points (Rollout.draft_block), as in `sliding`.
Ragged rows feed different numbers of patches in one call: shorter rows are padded by repeating
their last patch, and the cache is cropped back to each row's own end.
"""
import torch

from layers.instance_norm import instance_stats, trailing_stats
from layers.kv_cache import KVCache
from models.output import Forecast
from speculative.rollout import Rollout

NAN = float("nan")
CACHE_STATS = ("trailing", "frozen")


class CachedRollout(Rollout):
    def __init__(self, target, draft, x, n_patches, max_k, tracer, window=0, stats="trailing"):
        super().__init__(target, draft, x, n_patches, max_k, tracer)
        if stats not in CACHE_STATS:
            raise ValueError(f"unknown cache statistics '{stats}'; valid: {', '.join(CACHE_STATS)}")
        self.trailing = stats == "trailing"
        self.context_stats = instance_stats(x)
        models = {"target": target, "draft": None if self.one_call_draft else draft}
        self.caches = {role: self._prefill(model, x, window) for role, model in models.items() if model is not None}

    def _prefill(self, model, x, window):
        cache = KVCache(model.n_layers, window)
        model(x, cache)
        cache.crop(self._tokens(self.length) - 1)
        return cache

    def _tokens(self, points):
        return points // self.patch_len

    def _feed(self, model, cache, rows, ends):
        """Feed each of the rows' patches (rows None: every row) from its cache length up to the token ends[r]
        (exclusive) in one call on `cache` (which holds those rows). Returns the Forecast [R, W, P, C] at the W
        fed positions (rows padded after their own count by repeating their last patch) and the counts [R]."""
        counts = ends - cache.lengths
        width = int(counts.max())
        steps = torch.minimum(cache.lengths[:, None] + torch.arange(width, device=ends.device),
                              (ends - 1).clamp(min=0)[:, None])
        seq = self.seq if rows is None else self.seq[rows]
        stats = self._step_stats(seq, rows, steps) if model.use_norm else None
        patches = seq.unflatten(1, (-1, self.patch_len))[torch.arange(len(ends), device=ends.device)[:, None], steps]
        out = model(patches.flatten(1, 2), cache, stats)
        cache.crop(ends)
        return Forecast(*(None if t is None else t.unflatten(1, (width, self.patch_len)) for t in out[:2])), counts

    def _step_stats(self, seq, rows, steps):
        """Statistics (mean, std) of the time steps steps [R, W] (token indices) of seq, the rows' sequences:
        [R, W, C], those of the L points ending with each step (trailing), or the context window's [R, 1, C]
        (frozen)."""
        if not self.trailing:
            return self.context_stats if rows is None else tuple(s[rows] for s in self.context_stats)
        return trailing_stats(seq, (steps + 1) * self.patch_len, self.context_len)

    def draft_next(self, sub):
        """Only the rows sub are computed: the others' caches stay as they are."""
        cache, every_row = self.caches["draft"], len(sub) == len(self.length)
        part = cache if every_row else cache.subset(sub)
        out, counts = self._feed(self.draft, part, None if every_row else sub,
                                 self._tokens(self.length[sub]) + self.proposed[sub])
        if part is not cache:
            cache.merge(sub, part)
        rows = torch.arange(len(sub), device=sub.device)
        return Forecast(*(None if t is None else t[rows, counts - 1] for t in out[:2]))

    def verify(self, k_eff):
        with self.tracer.timed("target_verify"):
            out, _ = self._feed(self.target, self.caches["target"], None, self._tokens(self.length) + k_eff)
        mu_p = out.mean
        slots = torch.arange(mu_p.shape[1], device=k_eff.device)
        return mu_p.masked_fill((slots[None] > k_eff[:, None])[..., None, None], NAN)

    def commit(self, final, n_accepted):
        super().commit(final, n_accepted)
        self._crop_to_committed()

    def rewind(self):
        super().rewind()
        self._crop_to_committed()

    def _crop_to_committed(self):
        """Caches keep at most the committed patches but the pending (last) one."""
        for cache in self.caches.values():
            cache.crop(torch.minimum(cache.lengths, self._tokens(self.length) - 1))

    def retain(self, keep):
        super().retain(keep)
        self.context_stats = tuple(s[keep] for s in self.context_stats)
        for cache in self.caches.values():
            cache.select(keep.nonzero().squeeze(1))

"""Target-only decoding, the baseline: one target call per patch through the same rollout as
speculative decoding (`sliding`: a window of the last N patches; `cached`: the pending patch on
top of the KV cache), so both outputs are comparable patch by patch. With sample_sigma each
emitted patch is μ_p + σ·ε (--target_sample), ε from the sample's own random stream."""
import math

import torch

from speculative.random_streams import normal_draws, sample_generators
from speculative.rollout_options import RolloutOptions, make_rollout
from speculative.tracer import SectionTimer


class TargetOnlyDecoder:
    def __init__(self, target, rollout=RolloutOptions(), sample_sigma=None, seed=2021):
        self.target, self.rollout = target, rollout
        self.sample_sigma, self.seed = sample_sigma, seed

    @torch.no_grad()
    def generate(self, x, horizon, sample_ids):
        """[B, horizon, C] forecast of x [B, L, C]; sample_ids seed the random streams."""
        n_patches = math.ceil(horizon / self.target.output_len)
        rollout = make_rollout(self.rollout, self.target, None, x, n_patches, 0, SectionTimer())
        generators = None if self.sample_sigma is None else sample_generators(self.seed, sample_ids)
        none_proposed = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for _ in range(n_patches):
            patch = rollout.verify(none_proposed)[:, 0]
            if generators is not None:
                noise = normal_draws(generators, patch.shape[1:], patch.device)
                patch = patch + self.sample_sigma * noise.to(patch.dtype)
            rollout.commit(patch, none_proposed)
        return rollout.emitted(slice(None), n_patches)[:, :horizon]

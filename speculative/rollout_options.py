"""How a rollout is chosen: --rollout and its options (RolloutOptions), and make_rollout, which builds the
`sliding` (sliding.py) or `cached` (cached.py) rollout of a batch."""
from dataclasses import dataclass

from speculative.cached import CachedRollout
from speculative.sliding import SlidingRollout

ROLLOUTS = ("sliding", "cached")


@dataclass(frozen=True)
class RolloutOptions:
    """--rollout, and for `cached` --cache_max_tokens (0: attend to every step) and --cache_stats."""
    kind: str = "sliding"
    cache_window: int = 0
    cache_stats: str = "trailing"

    @staticmethod
    def of(args):
        return RolloutOptions(args.rollout, args.cache_max_tokens, args.cache_stats)

    @property
    def label(self):
        """The rollout as result files name it: sliding, cached_trailing or cached_frozen."""
        return self.kind if self.kind == "sliding" else f"{self.kind}_{self.cache_stats}"


def make_rollout(options: RolloutOptions, target, draft, x, n_patches, max_k, tracer):
    """A fresh rollout of batch x [B, L, C] for n_patches patches."""
    if options.kind == "sliding":
        return SlidingRollout(target, draft, x, n_patches, max_k, tracer)
    if options.kind == "cached":
        return CachedRollout(target, draft, x, n_patches, max_k, tracer, options.cache_window, options.cache_stats)
    raise ValueError(f"unknown rollout '{options.kind}'; valid: {', '.join(ROLLOUTS)}")

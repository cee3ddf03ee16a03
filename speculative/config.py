"""The settings of one speculative decoder. Flags are validated once, at start-up (run.py); this is
only their carrier."""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SpecConfig:
    """--spec_k (the largest K when adaptive), --spec_sigma, --spec_accept_bias,
    --spec_accept_mode, --spec_residual_max_tries, --draft_stochastic, --input_token_len (P),
    --seed, --spec_adaptive."""
    k: int = 3
    sigma: float = 0.7
    bias: float = 1.0
    accept_mode: str = "tolerance"
    residual_max_tries: int = 100
    draft_stochastic: bool = False
    patch_len: int = 96
    seed: int = 2021
    adaptive: bool = False

    @property
    def log_bias(self):
        return math.log(self.bias)

    @staticmethod
    def of(args):
        return SpecConfig(k=args.spec_k, sigma=args.spec_sigma, bias=args.spec_accept_bias,
                          accept_mode=args.spec_accept_mode, residual_max_tries=args.spec_residual_max_tries,
                          draft_stochastic=args.draft_stochastic, patch_len=args.input_token_len, seed=args.seed,
                          adaptive=args.spec_adaptive)

"""The speculative engine: rollouts (rollout.py, sliding.py, cached.py; chosen in rollout_options.py), the
round loop (engine.py), the proposer (proposer.py), acceptance rules (acceptance.py), the speed model
(speed_model.py), per-sample random streams (random_streams.py), counters and section timers (counters.py,
tracer.py), debug rows (debug_rows.py), the MSE-budget calibration (calibration.py) and the target-only
baseline (target_only.py)."""
from speculative.config import SpecConfig
from speculative.engine import SpeculativeDecoder
from speculative.rollout_options import ROLLOUTS, RolloutOptions
from speculative.target_only import TargetOnlyDecoder

__all__ = ["ROLLOUTS", "RolloutOptions", "SpecConfig", "SpeculativeDecoder", "TargetOnlyDecoder"]

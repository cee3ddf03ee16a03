"""The speed model of speculative decoding (speculative.md section 5), defined once.

Costs are in units of one plain target step (a target call that verifies 0 proposals):
  c = time of one draft step / time of one target step,
  v = time of the verify call of a round / time of one target step.
A round that proposes K patches costs K·c + v and emits Σ_{i=0..K} α^i patches on average, so
S(α, K, c, v) = (1 − α^(K+1)) / ((1 − α)(K·c + v)). K = 0 is a plain target step: S = 1.
A one-call draft (models/output.py is_one_call) proposes its K patches with ONE call: c is then the cost of
that call, paid once per round, and a round costs c + v (K >= 1).
"""
from dataclasses import dataclass

import torch

from utils.stopwatch import Stopwatch


def cost_ratio(draft_step_s, target_step_s):
    """c: the draft-to-target cost ratio of one step."""
    return draft_step_s / target_step_s


def expected_patches(alpha, k):
    """Σ_{i=0..K} α^i, summed directly so that α = 1 needs no special case."""
    return sum(alpha**i for i in range(k + 1))


def draft_calls_per_round(k, one_call=False):
    return min(k, 1) if one_call else k


def predicted_speedup(alpha, k, c, v, one_call=False):
    return expected_patches(alpha, k) / (draft_calls_per_round(k, one_call) * c + v)


@dataclass
class StepCosts:
    """Measured seconds of one batched draft call (a step, or a one-call draft's whole block) and
    of one verify call per number of proposals (verify_s[0]: a plain target step)."""
    draft_step_s: float
    verify_s: list
    one_call: bool = False

    @property
    def c(self):
        return cost_ratio(self.draft_step_s, self.verify_s[0])

    def v(self, k):
        return self.verify_s[k] / self.verify_s[0]

    def speedup(self, alpha, k):
        return predicted_speedup(alpha, k, self.c, self.v(k), self.one_call)

    def best_k(self, alpha, k_max):
        """The K in 0..k_max with the largest predicted speedup; the smallest such K on ties, so K = 0
        (target-only) whenever speculation is not predicted to pay."""
        return max(range(k_max + 1), key=lambda k: self.speedup(alpha, k))


def measure_step_costs(rollout, k_max, device, repeats=5):
    """StepCosts on the rollout's current batch: median seconds of one draft call for every row and
    of the verify call with 0..k_max proposals (after one untimed call each), the device synchronised
    around each call and the rollout rewound after it. Meant for the untimed warm-up."""
    rows = torch.arange(len(rollout.length), device=rollout.length.device)
    filler = rollout.last_patches()

    def median_seconds(call):
        call()  # untimed: first calls at a new shape pay for allocations
        rollout.rewind()
        seconds = []
        for _ in range(repeats):
            with Stopwatch(device) as watch:
                call()
            rollout.rewind()
            seconds.append(watch.seconds)
        return sorted(seconds)[len(seconds) // 2]

    def verify(k):
        for _ in range(k):
            rollout.add_proposal(rows, filler)
        rollout.verify(torch.full_like(rows, k))

    one_call = rollout.one_call_draft
    draft_s = median_seconds(lambda: rollout.draft_block(rows, k_max) if one_call else rollout.draft_next(rows))
    return StepCosts(draft_s, [median_seconds(lambda k=k: verify(k)) for k in range(k_max + 1)], one_call)

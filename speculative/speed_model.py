"""The speed model of speculative decoding (speculative.md section 5), defined once.

Costs are in units of one plain target step (a target call that verifies 0 proposals):
  c = time of one draft call / time of one target step,
  v(k) = time of the verify call with k proposals / time of one target step (v(0) = 1),
  p_S, p_T = time of building the speculative / the target-only rollout of a batch / one target step:
    the `cached` rollout prefills each model once per batch (target; draft unless it is a one-call
    draft); `sliding` builds without a model call (p close to 0).

ONE prediction, predicted_speedup, from counts (speculative/counters.py, per sample: F forecasts, n_k
verify calls with k proposals, D draft calls, P patches emitted):
  target-only  = F·p_T + P                       (one prefill per forecast, one step per patch)
  speculative  = F·p_S + Σ_k n_k·v(k) + D·c
  predicted speedup = target-only / speculative.
A batched call over B rows counts once per row in the counts and its cost is measured for the whole
batch, so the common factor B cancels in the ratio. A one-call draft (models/output.py is_one_call)
proposes a round's K patches with ONE call: c is the cost of that call and D counts it once per round.
- A run (what run.py, speedup.py and the calibration report): the run's own counts, so the K that each
  round actually proposed (adaptive K included) and the prefills.
- One round (adaptive K chooses by it; step_costs.py's S): the counts a round proposing K patches adds on
  average (expected_round): K draft calls (one for a one-call draft, none for K = 0), one verify call with
  K proposals and Σ_{i=0..K} α^i patches, no prefill; so S(α, K, c, v) = (1 − α^(K+1)) / ((1 − α)(K·c + v))
  (c + v(K) for a one-call draft), and K = 0, a plain target step, gives S = 1.

Measurement: a repeat times every call once, back to back on one batch (both rollouts built, one draft
call on every row, the verify call with 0..K proposals). c, v(k), p_S and p_T are medians over the
repeats of each repeat's ratios (load that changes during a run cancels within a repeat), reported
with their range (min, max) over the repeats. Callers spread the repeats across the run (a few on the
warm-up batch, one per later batch). A median that is impossible (c <= 0, v(k) < 1 for k >= 1) is a
problem: the predicted speedup is then NaN and adaptive K does not trust the costs.
"""
import statistics
from dataclasses import dataclass

import torch

from speculative.counters import SpecCounters
from utils.timing import timed

NAN = float("nan")


def expected_patches(alpha, k):
    """Σ_{i=0..K} α^i, summed directly so that α = 1 needs no special case."""
    return sum(alpha**i for i in range(k + 1))


def draft_calls_per_round(k, one_call=False):
    return min(k, 1) if one_call else k


def expected_round(alpha, k, one_call=False):
    """The counts one round proposing K patches adds on average, at acceptance α."""
    return SpecCounters(draft_calls=draft_calls_per_round(k, one_call), verify_calls_by_k=[0] * k + [1],
                        patches_emitted=expected_patches(alpha, k))


@dataclass(frozen=True)
class Repeat:
    """Seconds of one pass over every call on one batch: one draft call on every row (a step, or a
    one-call draft's whole block), the verify call with k = 0..K proposals (verify_s[0]: a plain target
    step), and building the speculative and the target-only rollout."""
    draft_s: float
    verify_s: tuple
    prefill_s: float = 0.0
    target_prefill_s: float = 0.0

    def in_target_steps(self):
        """This repeat's costs over its own plain target step (NaN if that measured no time)."""
        step = self.verify_s[0]

        def ratio(seconds):
            return seconds / step if step > 0 else NAN
        return {"c": ratio(self.draft_s), "prefill": ratio(self.prefill_s),
                "target_prefill": ratio(self.target_prefill_s),
                **{f"v({k})": ratio(s) for k, s in enumerate(self.verify_s)}}


class StepCosts:
    """The measured repeats, with the median and the range (min, max) of every ratio over them."""

    def __init__(self, one_call=False):
        self.one_call, self.repeats = one_call, []
        self.median, self.range = {}, {}

    @staticmethod
    def of(draft_s, verify_s, one_call=False, prefill_s=0.0, target_prefill_s=0.0):
        """Costs known from one repeat of the given seconds."""
        costs = StepCosts(one_call)
        costs.add(Repeat(draft_s, tuple(verify_s), prefill_s, target_prefill_s))
        return costs

    def add(self, repeat):
        self.repeats.append(repeat)
        per_repeat = [r.in_target_steps() for r in self.repeats]
        for name in per_repeat[0]:
            values = [ratios[name] for ratios in per_repeat]
            self.median[name], self.range[name] = statistics.median(values), (min(values), max(values))

    @property
    def k_max(self):
        return len(self.repeats[0].verify_s) - 1

    @property
    def c(self):
        return self.median["c"]

    def v(self, k):
        return self.median[f"v({k})"]

    @property
    def problems(self):
        """The impossible medians, as 'c=0' or 'v(1)=0.1812'; empty when the costs can be trusted."""
        found = [] if self.c > 0 or self.k_max == 0 else [f"c={self.c:.4g}"]
        return found + [f"v({k})={self.v(k):.4g}" for k in range(1, self.k_max + 1) if not self.v(k) >= 1]

    def speedup(self, alpha, k):
        """S(α, K, c, v) of one round."""
        return predicted_speedup(self, expected_round(alpha, k, self.one_call))

    def best_k(self, alpha, k_max):
        """The K in 0..k_max with the largest predicted speedup; the smallest such K on ties, so K = 0
        (target-only) whenever speculation is not predicted to pay."""
        return max(range(k_max + 1), key=lambda k: self.speedup(alpha, k))


def predicted_speedup(costs, counters):
    """The predicted speedup over target-only decoding in the same rollout of the work `counters` counts (a run,
    or expected_round), from the module docstring's formula; NaN when the costs have problems."""
    if costs.problems:
        return NAN
    target_only = counters.forecasts * costs.median["target_prefill"] + counters.patches_emitted
    verify = sum(n * costs.v(k) for k, n in enumerate(counters.verify_calls_by_k))
    speculative = counters.forecasts * costs.median["prefill"] + verify + counters.draft_calls * costs.c
    return target_only / speculative


def reported_k(config, counters):
    """The K whose v a record reports: --spec_k, or with adaptive K the K that most proposing rounds used
    (the smallest on ties; 0 when no round proposed)."""
    if not config.adaptive:
        return config.k
    proposing = {k: n for k, n in enumerate(counters.verify_calls_by_k) if k and n}
    return max(proposing, key=proposing.get, default=0)


def speed_report(costs, counters, k):
    """What result files report of the speed model: c and v of K (reported_k) with their ranges, the prefill
    costs, the number of repeats, the check of the costs, the rounds in which adaptive K fell back to
    K = --spec_k, and the run's predicted speedup."""
    (c_min, c_max), (v_min, v_max) = costs.range["c"], costs.range[f"v({k})"]
    check = " ".join(["impossible"] + costs.problems) if costs.problems else "ok"
    return dict(c=costs.c, c_min=c_min, c_max=c_max, v=costs.v(k), v_min=v_min, v_max=v_max,
                prefill=costs.median["prefill"], target_prefill=costs.median["target_prefill"],
                cost_repeats=len(costs.repeats), cost_check=check,
                adaptive_fallback_rounds=counters.adaptive_fallback_rounds,
                predicted_speedup=predicted_speedup(costs, counters))


def measure_step_costs(build, k_max, device, costs, repeats=1):
    """Adds `repeats` repeats to costs, each on fresh rollouts of one batch: build(True) the
    speculative rollout, build(False) the target-only one. The first measurement of a StepCosts starts
    with an untimed pass: first calls at a new shape pay for allocations."""
    if not costs.repeats:
        time_calls(build, k_max, device)
    for _ in range(repeats):
        costs.add(time_calls(build, k_max, device))


def time_calls(build, k_max, device):
    """One Repeat, the device synchronised around each call and the rollout rewound after each."""
    _, target_prefill_s = timed(lambda: build(False), device)
    rollout, prefill_s = timed(lambda: build(True), device)
    rows = torch.arange(len(rollout.length), device=rollout.length.device)
    filler = rollout.last_patches()

    def seconds(call):
        _, s = timed(call, device)
        rollout.rewind()
        return s

    def verify(k):
        for _ in range(k):
            rollout.add_proposal(rows, filler)
        rollout.verify(torch.full_like(rows, k))

    def draft():
        return rollout.draft_block(rows, k_max) if rollout.one_call_draft else rollout.draft_next(rows)

    verify_s = tuple(seconds(lambda k=k: verify(k)) for k in range(k_max + 1))
    return Repeat(seconds(draft) if k_max else 0.0, verify_s, prefill_s, target_prefill_s)

"""The speed model's one prediction (speculative/speed_model.py): a round's S is the run formula on the
round's expected counts, and a record reports the K that the rounds actually used."""
import math

import pytest

from speculative.config import SpecConfig
from speculative.counters import SpecCounters
from speculative.speed_model import StepCosts, expected_round, predicted_speedup, reported_k, speed_report

VERIFY_S = (0.1, 0.12, 0.15, 0.2)  # v(1..3) = 1.2, 1.5, 2.0 target steps


@pytest.mark.parametrize("alpha, expected", [(0.5, (1 - 0.5**4) / 0.5), (1.0, 4.0), (1 - 1e-9, 4.0), (0.0, 1.0)])
def test_round_speedup_is_the_closed_form(alpha, expected):
    """S(α, 3, c, v) = (1 − α⁴) / ((1 − α)(3c + v(3))) with c = 0.1, v(3) = 2, and Σ α^i at α = 1."""
    costs = StepCosts.of(0.01, VERIFY_S)
    assert costs.speedup(alpha, 3) == pytest.approx(expected / (3 * 0.1 + 2.0))
    assert costs.speedup(alpha, 0) == 1.0


@pytest.mark.parametrize("one_call, draft_calls", [(False, 3), (True, 1)], ids=["autoregressive", "one_call"])
def test_a_round_is_the_run_prediction_of_its_expected_counts(one_call, draft_calls):
    """One function predicts: a round's S equals predicted_speedup of the counts the round adds, and a one-call
    draft's round makes one draft call whatever K."""
    costs, alpha = StepCosts.of(0.01, VERIFY_S, one_call=one_call), 0.8
    counts = expected_round(alpha, 3, one_call)
    assert counts.draft_calls == draft_calls and counts.verify_calls_by_k == [0, 0, 0, 1]
    assert costs.speedup(alpha, 3) == predicted_speedup(costs, counts)
    assert costs.speedup(alpha, 3) == pytest.approx((1 + 0.8 + 0.64 + 0.512) / (draft_calls * 0.1 + 2.0))
    assert expected_round(alpha, 0, one_call).draft_calls == 0


def test_impossible_costs_predict_nan_for_a_round_as_for_a_run():
    assert math.isnan(StepCosts.of(0.0, VERIFY_S).speedup(1.0, 3))


def test_adaptive_record_reports_the_k_its_rounds_used():
    """--spec_k 3 with adaptive K, whose proposing rounds mostly used K = 1: c and v are those of K = 1, and the
    prediction weighs each round by its own K (2 plain steps, 10 rounds of K 1, 1 of K 2: 2 + 12 + 1.5 + 12 draft
    calls·0.1 = 16.7 target steps for 2 + 20 + 3 = 25 patches), not as if every round proposed 3."""
    costs = StepCosts.of(0.01, VERIFY_S)
    counters = SpecCounters(verify_calls_by_k=[2, 10, 1], draft_calls=12, patches_emitted=25)
    k = reported_k(SpecConfig(k=3, adaptive=True), counters)
    report = speed_report(costs, counters, k)
    assert k == 1 and report["v"] == pytest.approx(1.2)
    assert report["predicted_speedup"] == pytest.approx(25 / 16.7)
    assert reported_k(SpecConfig(k=3), counters) == 3
    assert reported_k(SpecConfig(k=3, adaptive=True), SpecCounters(verify_calls_by_k=[5])) == 0

"""The speed model (speculative/speed_model.py): step costs as medians of per-repeat ratios, its one prediction
(a round's S is the run formula on the round's expected counts; a one-call draft pays one call per round), and
the K a record reports."""
import math

import pytest

from speculative.config import SpecConfig
from speculative.counters import SpecCounters
from speculative.speed_model import (Repeat, StepCosts, expected_round, predicted_speedup, reported_k,
                                     speed_report)

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


def test_c_v_and_the_best_k_against_hand_computed_numbers():
    """c = 0.02 / 0.1 = 0.2, v(1) = 1.2, v(2) = 1.5;
    S(0.8, 1) = 1.8 / (0.2 + 1.2) = 1.2857, S(0.8, 2) = 2.44 / (0.4 + 1.5) = 1.2842."""
    costs = StepCosts.of(draft_s=0.02, verify_s=[0.1, 0.12, 0.15])
    assert costs.c == pytest.approx(0.2) and costs.v(1) == pytest.approx(1.2) and costs.v(2) == pytest.approx(1.5)
    assert costs.best_k(0.8, 2) == 1          # 1.2857 > 1.2842
    assert costs.best_k(0.95, 2) == 2         # 2.8525 / 1.9 = 1.501 > 1.95 / 1.4 = 1.393
    assert costs.best_k(0.15, 2) == 0         # S(1) = 1.15 / 1.4 < 1: target-only
    assert StepCosts.of(0.1, [0.1, 0.1]).best_k(0.99, 1) == 0  # a draft as slow as the target: 1.99 / 2 < 1


def test_run_speedup_with_prefills_against_hand_computed_numbers():
    """c = 0.01 / 0.1 = 0.1, v(1) = 1.2, v(2) = 1.5, prefills p_S = 3.5, p_T = 3.0. Two forecasts of
    8 patches each in 2 plain steps and 4 verify calls with 2 proposals:
    target-only 2·3 + 16 = 22; speculative 2·3.5 + 2·1 + 4·1.5 + 8 draft calls·0.1 = 15.8.
    A one-call draft makes one call per proposing round: 4 calls, 15.4."""
    seconds = dict(draft_s=0.01, verify_s=[0.1, 0.12, 0.15], prefill_s=0.35, target_prefill_s=0.3)
    counts = dict(forecasts=2, patches_emitted=16, target_calls=6, verify_calls_by_k=[2, 0, 4])
    stepwise = predicted_speedup(StepCosts.of(**seconds), SpecCounters(draft_calls=8, **counts))
    one_call = predicted_speedup(StepCosts.of(one_call=True, **seconds), SpecCounters(draft_calls=4, **counts))
    assert stepwise == pytest.approx(22 / 15.8) and one_call == pytest.approx(22 / 15.4)


def test_costs_are_medians_of_per_repeat_ratios_with_their_range():
    """Three repeats, the second under load (every call 2x slower) and one with a slow draft call:
    c per repeat 0.1, 0.1, 0.3 -> median 0.1, range 0.1-0.3; v(1) 1.2, 1.2, 1.4 -> 1.2 (1.2-1.4)."""
    costs = StepCosts()
    for repeat in (Repeat(0.1, (1.0, 1.2), 4.0, 3.0), Repeat(0.2, (2.0, 2.4), 8.0, 6.0),
                   Repeat(0.3, (1.0, 1.4), 4.0, 3.0)):
        costs.add(repeat)
    assert costs.c == pytest.approx(0.1) and costs.range["c"] == pytest.approx((0.1, 0.3))
    assert costs.v(1) == pytest.approx(1.2) and costs.range["v(1)"] == pytest.approx((1.2, 1.4))
    assert costs.median["prefill"] == pytest.approx(4.0) and costs.median["target_prefill"] == pytest.approx(3.0)
    assert costs.problems == []


def test_a_one_call_draft_makes_a_larger_k_pay():
    """c = 0.05 / 0.1 = 0.5 for the whole block: S(0.8, 3) = 2.952 / (0.5 + 1.2) = 1.736, not
    2.952 / (1.5 + 1.2) = 1.093; step by step K = 2 is best (2.44 / 2.15 = 1.135 > 1.8 / 1.6 = 1.125)."""
    verify = [0.1, 0.11, 0.115, 0.12]
    one_call, stepwise = StepCosts.of(0.05, verify, one_call=True), StepCosts.of(0.05, verify)
    assert one_call.best_k(0.8, 3) == 3 and stepwise.best_k(0.8, 3) == 2

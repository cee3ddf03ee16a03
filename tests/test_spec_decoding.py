"""Speculative decoding engine (speculative/), the sliding rollout and result files, on tiny
deterministic models. The cached rollout and KV cache are tested in test_cached_rollout.py, what every
rollout and draft kind guarantees in test_spec_properties.py."""
import csv
import math
import re

import pytest
import torch
from torch.distributions import Normal

from helpers import C, L, N_VALUES, P, CallSpy, PatchMap, contexts, decode, target_only
from speculative import SpecConfig, SpeculativeDecoder
from speculative import speed_model
from speculative.acceptance import lossless_acceptance_prob, sample_residual
from speculative.debug_rows import DEBUG_COLUMNS
from speculative.random_streams import sample_generators
from speculative.speed_model import StepCosts, predicted_speedup, speed_report
from utils.records import (parse_summary, write_debug_csv, write_speculative_breakdown,
                           write_speculative_summary, write_standard_breakdown,
                           write_standard_summary)


def next_patch(model, window):
    return model(window).mean[:, -P:]


def test_sliding_rollout_steps_and_window():
    target, x, horizon = CallSpy(PatchMap(0)), contexts(3), 22
    out = target_only(target, x, horizon)
    assert out.shape == (3, horizon, C) and target.calls == math.ceil(horizon / P)
    window = x
    for step in range(math.ceil(horizon / P)):
        expected = next_patch(target.model, window)
        torch.testing.assert_close(out[:, step * P:(step + 1) * P], expected[:, :horizon - step * P])
        window = torch.cat([window[:, P:], expected], dim=1)


def test_sliding_rollout_samples_are_per_sample_reproducible():
    target, x = PatchMap(0), contexts(4)
    sampled = target_only(target, x, 12, 0.5, [5, 6, 7, 8], seed=3)
    assert not torch.allclose(sampled, target_only(target, x, 12))
    assert not torch.allclose(sampled, target_only(target, x, 12, 0.5, [5, 6, 7, 8], seed=4))  # --seed matters
    for i in range(4):
        alone = target_only(target, x[i:i + 1], 12, 0.5, [5 + i], seed=3)
        torch.testing.assert_close(alone[0], sampled[i])


@pytest.mark.parametrize("k", [1, 3])
def test_huge_sigma_accepts_every_proposal(k):
    target, draft, x, horizon = PatchMap(0), PatchMap(1), contexts(4), 26
    n_patches = math.ceil(horizon / P)
    out, counters, _ = decode(target, draft, x, horizon, k=k, sigma=1e6)
    assert counters.accepted == counters.attempted == counters.draft_calls
    assert counters.target_calls == 4 * math.ceil(n_patches / (k + 1))
    draft_only = target_only(draft, x, k * P)
    torch.testing.assert_close(out[:, :k * P], draft_only, rtol=0, atol=1e-6)
    # Every round emits k accepted draft patches, then the target's bonus (or one target patch).
    for j in range(n_patches):
        window = torch.cat([x, out[:, :j * P]], dim=1)[:, -L:]
        is_bonus = j % (k + 1) == k or j == n_patches - 1
        expected = next_patch(target if is_bonus else draft, window)
        torch.testing.assert_close(out[:, j * P:(j + 1) * P], expected[:, :horizon - j * P])


@pytest.mark.parametrize("mode, bias, expected_alpha", [
    ("lossless", 2.0, lossless_acceptance_prob(0.25 * math.sqrt(N_VALUES), 0.5, 2.0)),
    ("tolerance", 1.05, 1.05 * math.exp(-(0.25**2 * N_VALUES) / (2 * 0.5**2 * N_VALUES))),
])
def test_acceptance_rate_matches_theory_for_offset_draft(mode, bias, expected_alpha):
    """draft = target + 0.25 in every value: ‖μ_p − μ_q‖ is the same at every proposal, so each
    tested proposal is accepted with the closed-form α."""
    sigma, x = 0.5, contexts(300)
    _, counters, _ = decode(PatchMap(0), PatchMap(0, offset=0.25), x, 24, k=3, sigma=sigma,
                            bias=bias, accept_mode=mode)
    stderr = math.sqrt(expected_alpha * (1 - expected_alpha) / counters.attempted)
    assert abs(counters.accepted / counters.attempted - expected_alpha) < 4 * stderr


def test_confident_wrong_stochastic_draft_gets_low_acceptance():
    """Stochastic draft N(μ_p + 0.4, 0.05) against p = N(μ_p, 0.5²): acceptance is
    E_q[min(1, p/q)] (computed here with torch.distributions), far below 100%."""
    sigma, offset, logvar = 0.5, 0.4, math.log(0.05)
    draft = PatchMap(0, offset=offset, logvar=logvar)
    draft.var_weight.zero_()  # constant variance, so the expectation below is exact
    _, counters, _ = decode(PatchMap(0), draft, contexts(300), 24, k=3, sigma=sigma,
                            accept_mode="lossless", draft_stochastic=True)
    q, p = Normal(offset, math.exp(logvar / 2)), Normal(0.0, sigma)
    x = offset + q.stddev * torch.randn(50_000, N_VALUES, generator=torch.Generator().manual_seed(4))
    expected = (p.log_prob(x) - q.log_prob(x)).sum(1).clamp(max=0).exp().mean().item()
    stderr = math.sqrt(max(expected * (1 - expected), 1e-3) / counters.attempted)
    assert expected < 0.5
    assert abs(counters.accepted / counters.attempted - expected) < 4 * stderr + 0.01


@pytest.mark.parametrize("mode, stochastic", [("tolerance", False), ("lossless", False),
                                              ("lossless", True), ("tolerance", True)])
def test_counters_agree_with_calls_and_debug_rows(mode, stochastic):
    k, horizon, batch = 3, 38, 7
    target = CallSpy(PatchMap(0))
    draft = CallSpy(PatchMap(0, offset=0.3, logvar=math.log(0.3) if stochastic else None))
    rows = []
    out, counters, tracer = decode(target, draft, contexts(batch), horizon, rows=rows, k=k,
                                   sigma=0.6, accept_mode=mode, draft_stochastic=stochastic)
    n_patches = math.ceil(horizon / P)
    assert out.shape == (batch, horizon, C) and torch.isfinite(out).all()
    assert counters.patches_emitted == batch * n_patches
    assert counters.target_calls == target.windows - counters.draft_calls
    assert target.calls == tracer.n_target_verify_calls
    assert counters.draft_calls == draft.windows and draft.calls == tracer.n_draft_calls
    assert 1 <= counters.patches_per_target_call <= k + 1

    proposals = [r for r in rows if r["kind"] == "proposal"]
    corrections = [r for r in rows if r["kind"] == "target_draw"]
    assert len(proposals) == counters.attempted
    assert sum(r["accept"] for r in proposals) == counters.accepted
    assert len(corrections) == counters.attempted - counters.accepted  # one per rejected round
    assert 0 < counters.accepted < counters.attempted
    assert all(set(r) == set(DEBUG_COLUMNS) for r in rows)
    for r in proposals:
        assert r["alpha"] == pytest.approx(min(1.0, r["bias"] * r["ratio"]))
        assert r["accept"] == float(r["r"] < r["alpha"])
        assert r["sigma_mode"] == ("draft_logvar" if stochastic else "fixed")
        if mode == "tolerance":
            assert r["tol_accept"] == r["accept"] and r["sse_q"] == 0.0
        else:
            assert r["log_ratio"] == pytest.approx(r["logp"] - r["logq"], abs=1e-6)
    for r in corrections:
        assert math.isnan(r["alpha"]) and math.isnan(r["accept"]) and math.isnan(r["r"])
        if mode == "tolerance":
            assert r["sse_p"] == 0.0  # the correction is μ_p itself


def test_draft_stochastic_must_match_the_draft():
    with pytest.raises(ValueError, match="--draft_stochastic"):
        decode(PatchMap(0), PatchMap(1, logvar=-1.0), contexts(2), 12)



def fixed_costs(c, k):
    """Step costs of a draft step c and a verify call as cheap as a target step for any K."""
    return StepCosts.of(draft_s=c, verify_s=[1.0] * (k + 1))


def test_adaptive_uses_max_k_for_a_cheap_draft_that_is_always_accepted():
    """Identical draft (α̂ -> 1), c = 0.01: every round proposes --spec_k = 5, so 12 patches
    take 2 rounds of 5 accepted proposals + bonus."""
    x = contexts(5)
    out, counters, _ = decode(PatchMap(0), PatchMap(0), x, 12 * P, costs=fixed_costs(0.01, 5), k=5, sigma=0.7,
                              adaptive=True)
    torch.testing.assert_close(out, target_only(PatchMap(0), x, 12 * P), rtol=0, atol=1e-6)
    assert counters.target_calls == 5 * 2 and counters.draft_calls == counters.accepted == 5 * 2 * 5


@pytest.mark.parametrize("c, sigma", [(1.0, 0.7), (0.1, 1e-6)], ids=["draft_as_slow_as_target", "nothing_accepted"])
def test_adaptive_falls_back_to_target_only_decoding(c, sigma):
    """K = 0 when speculation cannot pay: the output is then the target-only rollout. A draft as slow
    as the target is never called; with σ -> 0 (nothing accepted) the warm-up's rejections drive α̂
    below the break-even (v + c) - 1 = 0.1 before timing starts."""
    draft, x = CallSpy(PatchMap(1)), contexts(5)
    out, counters, _ = decode(PatchMap(0), draft, x, 6 * P, costs=fixed_costs(c, 4), k=4, sigma=sigma, adaptive=True)
    torch.testing.assert_close(out, target_only(PatchMap(0), x, 6 * P), rtol=0, atol=1e-6)
    assert counters.draft_calls == draft.windows == 0 and counters.target_calls == 5 * 6



def test_run_speedup_of_a_decode_without_prefills_is_the_round_formula():
    """An identical draft (α = 1), K = 2, 12 patches: 4 rounds of 3 patches, so the run's prediction is
    S(1, 2, c, v(2)) = 3 / (2·0.1 + 1.5), read from the engine's own counts."""
    x = contexts(3)
    _, counters, _ = decode(PatchMap(0), PatchMap(0), x, 12 * P, costs=StepCosts.of(0.1, [1.0, 1.2, 1.5]), k=2)
    assert counters.verify_calls_by_k == [0, 0, 3 * 4] and counters.draft_calls == 3 * 4 * 2
    assert predicted_speedup(StepCosts.of(0.1, [1.0, 1.2, 1.5]), counters) == pytest.approx(3 / 1.7)



class FakeClock:
    now = 0.0


class ScriptedRollout:
    """A rollout of one row whose calls advance a fake clock: the first call of each kind (a new shape)
    takes 10x as long. Draft step 0.2 s, verify call with k proposals 1 + 0.5·k s."""
    one_call_draft = False
    length = torch.zeros(1, dtype=torch.long)
    seen = set()

    def __init__(self, clock, prefill_s):
        self.clock, self.proposed = clock, 0
        self._spend("build", prefill_s)

    def _spend(self, kind, seconds):
        self.clock.now += seconds * (1 if kind in self.seen else 10)
        self.seen.add(kind)

    def last_patches(self):
        return torch.zeros(1, P, C)

    def add_proposal(self, rows, proposal):
        self.proposed += 1

    def verify(self, k_eff):
        self._spend(("verify", self.proposed), 1 + 0.5 * self.proposed)

    def draft_next(self, rows):
        self._spend("draft", 0.2)

    def rewind(self):
        self.proposed = 0


def test_measured_costs_start_after_an_untimed_pass(monkeypatch):
    """The slow first calls are never measured: c = 0.2, v(2) = 2, the prefill 3 s (target only 2 s) in
    every repeat."""
    clock = FakeClock()

    def fake_timed(fn, device):
        start = clock.now
        return fn(), clock.now - start

    monkeypatch.setattr(ScriptedRollout, "seen", set())
    monkeypatch.setattr(speed_model, "timed", fake_timed)
    costs = StepCosts()
    speed_model.measure_step_costs(lambda with_draft: ScriptedRollout(clock, 3.0 if with_draft else 2.0), 2, "cpu",
                                   costs, repeats=2)
    assert len(costs.repeats) == 2
    assert costs.range["c"] == pytest.approx((0.2, 0.2)) and costs.range["v(2)"] == pytest.approx((2.0, 2.0))
    assert costs.range["prefill"] == pytest.approx((3.0, 3.0)) and costs.median["target_prefill"] == pytest.approx(2.0)


def test_sample_costs_times_both_rollouts_of_the_batch(monkeypatch):
    """Every pass (the untimed one, then each repeat) builds the target-only rollout of the batch and
    the speculative one, with the draft."""
    built = []
    decoder = SpeculativeDecoder(PatchMap(0), PatchMap(1), SpecConfig(k=2, patch_len=P))
    time_calls = speed_model.time_calls

    def spy(build, k_max, device):
        built.extend((rollout.draft is not None, len(rollout.length)) for rollout in (build(False), build(True)))
        return time_calls(build, k_max, device)

    monkeypatch.setattr(speed_model, "time_calls", spy)
    decoder.sample_costs(contexts(3), 4 * P, repeats=2)
    assert built == [(False, 3), (True, 3)] * 3 and len(decoder.costs.repeats) == 2


@pytest.mark.parametrize("seconds, check", [((0.0, [1.0, 5.0, 5.0, 5.0]), "impossible c=0"),
                                            ((10.0, [1.0, 0.5, 0.5, 1.0]), "impossible v(1)=0.5 v(2)=0.5")],
                         ids=["free_draft", "verify_cheaper_than_a_step"])
def test_impossible_costs_are_reported_and_not_trusted_by_adaptive_k(seconds, check):
    """Taken as truth, both would make adaptive K choose K = 0 (a verify of 5 steps for at most 4
    patches; a draft call of 10 steps), so the draft would never be called. Instead adaptive K decodes
    with K = --spec_k = 3 in every round, counts those rounds, and the prediction is NaN."""
    draft, x = CallSpy(PatchMap(0)), contexts(2)
    costs = StepCosts.of(*seconds)
    out, counters, _ = decode(PatchMap(0), draft, x, 8 * P, costs=costs, k=3, adaptive=True)
    torch.testing.assert_close(out, target_only(PatchMap(0), x, 8 * P), rtol=0, atol=1e-6)
    assert counters.verify_calls_by_k == [0, 0, 0, 2 * 2] and counters.draft_calls == draft.windows == 2 * 2 * 3
    assert counters.adaptive_fallback_rounds == 2
    report = speed_report(costs, counters, 3)
    assert report["cost_check"] == check and math.isnan(report["predicted_speedup"])
    assert speed_report(StepCosts.of(0.01, [1.0, 1.1, 1.2, 1.3]), counters, 3)["cost_check"] == "ok"


SUMMARY_LINES = [
    r"setting:\S+",
    r"mode:speculative",
    r"mse:\d+\.\d{6}, mae:\d+\.\d{6}",
    r"total_gen_time_s:\d+\.\d{6}, per_batch_s:\d+\.\d{6}",
    r"accepted:\d+, attempted:\d+, acceptance_pct:\d+\.\d{2}",
    r"spec_k:\d+, spec_sigma:[\d.e+-]+, spec_accept_bias:[\d.e+-]+, accept_mode:(tolerance|lossless), "
    r"rollout:sliding, draft_stochastic:[01], spec_adaptive:[01](, test_pred_len:\d+, batch_size:\d+)?",
    r"forecasts:\d+, target_calls:\d+, target_calls_per_forecast:\d+\.\d{3}, target_only_calls_per_forecast:\d+, "
    r"draft_calls:\d+, patches_per_target_call:\d+\.\d{3}, residual_fallbacks:\d+",
    r"measured_cost_ratio_c:\d+\.\d{4}, verify_cost_v:\d+\.\d{4}, predicted_speedup:\d+\.\d{3}",
    r"c_min:\d+\.\d{4}, c_max:\d+\.\d{4}, v_min:\d+\.\d{4}, v_max:\d+\.\d{4}, prefill_cost:\d+\.\d{4}, "
    r"target_prefill_cost:\d+\.\d{4}, cost_repeats:\d+, cost_check:ok, adaptive_fallback_rounds:\d+",
    r"baseline_per_batch_s:\d+\.\d{6}, speedup:\d+\.\d{3}, mse_vs_target:\d+\.\d{6}, baseline_mse:\d+\.\d{6}",
]


def assert_records(path, line_patterns, n_records):
    records = path.read_text().split("\n\n")
    assert records[-1] == "" and len(records) == n_records + 1  # each record ends in a blank line
    for record in records[:-1]:
        lines = record.split("\n")
        assert len(lines) == len(line_patterns)
        for line, pattern in zip(lines, line_patterns):
            assert re.fullmatch(pattern, line), (line, pattern)


def test_summary_records_are_appended_with_exact_lines(tmp_path):
    path = tmp_path / "result_inference_summary.txt"
    _, counters, tracer = decode(PatchMap(0), PatchMap(1), contexts(3), 22, k=2, sigma=0.8)
    config = SpecConfig(k=2, sigma=0.8, patch_len=P)
    for setting in ("run_a", "run_b"):
        write_speculative_summary(path, setting, 0.25, 0.4, 3.0, 4, counters, config,
                                  baseline_per_batch_s=1.5, mse_vs_target=0.01, baseline_mse=0.2,
                                  speed=speed_report(StepCosts.of(0.012, [0.1, 0.13, 0.15]), counters, 2),
                                  test_pred_len=22, batch_size=3)
    assert_records(path, SUMMARY_LINES, 2)
    records = parse_summary(path)
    assert [r["setting"] for r in records] == ["run_a", "run_b"]
    assert records[0]["per_batch_s"] == 0.75 and records[0]["speedup"] == 2.0
    assert records[0]["accepted"] == counters.accepted and records[0]["target_only_calls_per_forecast"] == 6
    assert records[0]["target_calls_per_forecast"] == pytest.approx(counters.target_calls / 3, abs=5e-4)
    assert records[0]["acceptance_pct"] == pytest.approx(counters.acceptance_pct, abs=0.005)

    standard = tmp_path / "standard.txt"
    write_standard_summary(standard, "run_a", 0.25, 0.4, 3.0, 4)
    write_standard_summary(standard, "run_b", 0.25, 0.4, 3.0, 4, target_sample=True)
    assert_records(standard, SUMMARY_LINES[:1] + [r"mode:standard"] + SUMMARY_LINES[2:4]
                   + [r"rollout:sliding, target_sample:[01]"], 2)
    assert [r["target_sample"] for r in parse_summary(standard)] == [0, 1]


def test_breakdown_records(tmp_path):
    path = tmp_path / "result_inference_breakdown.txt"
    _, _, tracer = decode(PatchMap(0), PatchMap(1), contexts(2), 22, accept_mode="lossless")
    write_speculative_breakdown(path, "run_a", tracer)
    write_speculative_breakdown(path, "run_b", tracer)
    assert_records(path, [r"setting:run_[ab]", r"mode:speculative",
                          r"t_draft_total:\d+\.\d{6}, n_draft_calls:\d+",
                          r"t_prep_verify_total:\d+\.\d{6}",
                          r"t_target_verify_total:\d+\.\d{6}, n_target_verify_calls:\d+",
                          r"t_target_sample_total:\d+\.\d{6}, n_target_sample_calls:\d+",
                          r"t_accept_cpu_total:\d+\.\d{6}"], 2)
    assert parse_summary(path)[1]["n_draft_calls"] == tracer.n_draft_calls > 0

    standard = tmp_path / "standard_breakdown.txt"
    write_standard_breakdown(standard, "run_a", 2.0, 8, {"embedding": (0.5, 8), "blocks.attn": (1.0, 16)})
    assert_records(standard, [r"setting:run_a", r"mode:standard",
                              r"t_baseline_forward_total:2\.000000, n_baseline_calls:8",
                              r"comp_embedding_total:0\.500000, per_call_avg:0\.062500",
                              r"comp_blocks\.attn_total:1\.000000, per_call_avg:0\.062500"], 1)


def test_debug_csv_header_and_append(tmp_path):
    path = tmp_path / "spec_debug.csv"
    rows_point, rows_stochastic = [], []
    decode(PatchMap(0), PatchMap(1), contexts(2), 22, rows=rows_point,
           accept_mode="lossless")
    decode(PatchMap(0), PatchMap(1, logvar=-1.0), contexts(2), 22, rows=rows_stochastic,
           draft_stochastic=True)
    write_debug_csv(path, rows_point, DEBUG_COLUMNS)
    write_debug_csv(path, rows_stochastic, DEBUG_COLUMNS)
    lines = path.read_text().splitlines()
    assert lines[0] == ("batch_idx,round_i,sample_idx,kind,alpha,r,tol_accept,accept,mse,sse_p,"
                        "sse_q,logp,logq,log_ratio,ratio,sigma_eff,sigma_mode,bias,"
                        "mean_xi_minus_q,var_xi_minus_q,mean_xi_minus_p,var_xi_minus_p")
    assert lines.count(lines[0]) == 1
    with open(path, newline="") as f:
        parsed = list(csv.DictReader(f))
    assert len(parsed) == len(rows_point) + len(rows_stochastic)
    assert {r["sigma_mode"] for r in parsed} == {"fixed", "draft_logvar"}
    assert {r["kind"] for r in parsed} == {"proposal", "target_draw"}
    for row in parsed:
        for name in DEBUG_COLUMNS:
            if name not in ("kind", "sigma_mode"):
                float(row[name])  # every numeric cell parses, NaN included

    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="header"):
        write_debug_csv(other, rows_point, DEBUG_COLUMNS)


def residual_ks_distance(log_bias, bias_of_reference, n_draws=20_000):
    """KS distance between sample_residual's draws for one-value patches (μ_p = 0, μ_q = 1, σ = 1)
    and the residual r ∝ max(0, p − q/b) with b = bias_of_reference, integrated on a grid."""
    shape = (n_draws, 1, 1)
    draws, fell_back = sample_residual(torch.zeros(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64),
                                       1.0, log_bias, sample_generators(5, range(n_draws)), 200)
    assert not fell_back.any()
    grid = torch.linspace(-8, 8, 160_001, dtype=torch.float64)
    p, q = Normal(0.0, 1.0).log_prob(grid).exp(), Normal(1.0, 1.0).log_prob(grid).exp()
    density = (p - q / bias_of_reference).clamp(min=0)
    cdf = torch.cumsum(density, 0) / density.sum()
    sorted_draws = draws.flatten().sort().values
    reference = cdf[torch.searchsorted(grid, sorted_draws).clamp(max=len(grid) - 1)]
    return (torch.arange(1, n_draws + 1) / n_draws - reference).abs().max().item()


def test_residual_with_bias_is_max_of_p_minus_q_over_b():
    """With b = 2 the correction is drawn from max(0, p − q/2), not from max(0, p − q): the same
    KS check (critical value 1.95/sqrt(n) at level 0.001) passes for the right b and fails when the
    sampler ignores b."""
    critical = 1.95 / math.sqrt(20_000)
    assert residual_ks_distance(math.log(2.0), 2.0) < critical
    assert residual_ks_distance(0.0, 2.0) > 3 * critical

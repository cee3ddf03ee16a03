"""Acceptance rules (speculative/acceptance.py) against closed forms and independent densities."""
import math

import pytest
import torch
from torch.distributions import Normal

from speculative.acceptance import (LosslessRule, ToleranceRule, accept, acceptance_rule, gaussian_log_density,
                                    lossless_acceptance_prob,
                                    lossless_log_ratio, sample_residual, tolerance_log_ratio)
from speculative.config import SpecConfig
from speculative.proposer import Proposals
from speculative.random_streams import log_uniform_draws, normal_draws, sample_generators

PATCH = (4, 3)  # P, C: n = 12 values per patch
N_VALUES = PATCH[0] * PATCH[1]


def patch_means(delta):
    """μ_p, μ_q with ‖μ_p − μ_q‖ = delta, the gap spread unevenly over the values."""
    gen = torch.Generator().manual_seed(7)
    mu_p = torch.randn(PATCH, generator=gen, dtype=torch.float64)
    direction = torch.randn(PATCH, generator=gen, dtype=torch.float64)
    return mu_p, mu_p - delta * direction / direction.norm()


def normal_log_prob(x, mean, std):
    """Independent reference: torch.distributions, summed over the patch."""
    return Normal(mean, std).log_prob(x).sum(dim=(-2, -1))


def lossless_accept_rate(mu_p, mu_q, sigma, bias, n_draws, seed, draft_std=None, log_ratio_fn=None):
    """Empirical acceptance of x ~ q = N(μ_q, draft_std²) under the lossless rule."""
    gen = torch.Generator().manual_seed(seed)
    std = sigma if draft_std is None else draft_std
    x = mu_q + std * torch.randn((n_draws, *PATCH), generator=gen, dtype=torch.float64)
    draft_var = None if draft_std is None else torch.as_tensor(draft_std**2).expand(PATCH)
    log_ratio = (log_ratio_fn or lossless_log_ratio)(x, mu_p, mu_q, sigma, draft_var)
    log_u = torch.rand(n_draws, generator=gen, dtype=torch.float64).log()
    return accept(log_u, log_ratio, math.log(bias)).double().mean().item()


def test_gaussian_log_density_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    x, mean = torch.randn((2, 5, *PATCH), generator=gen, dtype=torch.float64)
    var = torch.rand((5, *PATCH), generator=gen, dtype=torch.float64) + 0.1
    expected = normal_log_prob(x, mean, var.sqrt())
    torch.testing.assert_close(gaussian_log_density(x, mean, var), expected)
    torch.testing.assert_close(gaussian_log_density(x, mean, 0.49), normal_log_prob(x, mean, 0.7))


def test_lossless_log_ratio_is_log_p_minus_log_q_with_all_constants():
    gen = torch.Generator().manual_seed(1)
    x, mu_p, mu_q = torch.randn((3, 6, *PATCH), generator=gen, dtype=torch.float64)
    sigma = 0.7
    equal_var = normal_log_prob(x, mu_p, sigma) - normal_log_prob(x, mu_q, sigma)
    torch.testing.assert_close(lossless_log_ratio(x, mu_p, mu_q, sigma), equal_var)

    draft_var = torch.rand((6, *PATCH), generator=gen, dtype=torch.float64) * 0.5 + 0.05
    general = normal_log_prob(x, mu_p, sigma) - normal_log_prob(x, mu_q, draft_var.sqrt())
    torch.testing.assert_close(lossless_log_ratio(x, mu_p, mu_q, sigma, draft_var), general)


def test_equal_variance_form_avoids_cancellation():
    # At |x| ~ 1e9 the two quadratic sums are ~1e18 (float64 spacing 128), so subtracting them
    # loses whole units; ℓ = Σ (μ_p − μ_q)(2x − μ_p − μ_q)/(2σ²) = Σ 2x here stays exact.
    mu_p = torch.full(PATCH, 1.0, dtype=torch.float64)
    mu_q = torch.full(PATCH, -1.0, dtype=torch.float64)
    x = torch.full(PATCH, 1e9 + 0.5, dtype=torch.float64)
    exact = 2 * (1e9 + 0.5) * N_VALUES
    assert lossless_log_ratio(x, mu_p, mu_q, 1.0).item() == exact


def test_tolerance_log_ratio_is_tempered_gaussian():
    mu_p, mu_q = patch_means(delta=1.5)
    sigma = 0.5
    expected = -(1.5**2) / (2 * sigma**2 * N_VALUES)
    assert tolerance_log_ratio(mu_p, mu_q, sigma).item() == pytest.approx(expected)


def integrated_acceptance(delta, sigma, bias, n_points=200_001):
    """E_q[min(1, b·p/q)] = ∫ min(q, b·p) by the trapezoid rule, independent of the closed form. With equal
    variances only the coordinate t along μ_p − μ_q differs between p and q: t ~ N(0, σ²) under q and
    N(Δ, σ²) under p."""
    t = torch.linspace(-12 * sigma, delta + 12 * sigma, n_points, dtype=torch.float64)
    q, p = Normal(0.0, sigma).log_prob(t).exp(), Normal(float(delta), sigma).log_prob(t).exp()
    return torch.trapezoid(torch.minimum(q, bias * p), t).item()


def test_integration_reproduces_the_b1_total_variation_overlap():
    for gap in (0.3, 1.0, 3.0):  # α(1) = 1 − TV(p, q) = 2Φ(−Δ/2σ)
        assert integrated_acceptance(gap, 1.0, 1.0) == pytest.approx(math.erfc(gap / 2 / math.sqrt(2)), abs=1e-7)


@pytest.mark.parametrize("sigma", [0.5, 2.0])
@pytest.mark.parametrize("gap", [0.5, 1.0, 2.0])  # Δ/σ
@pytest.mark.parametrize("bias", [1.0, 2.0, 5.0])
def test_lossless_acceptance_matches_numerical_integration(sigma, gap, bias):
    n_draws = 20_000
    mu_p, mu_q = patch_means(delta=gap * sigma)
    integrated = integrated_acceptance(gap * sigma, sigma, bias)
    assert lossless_acceptance_prob(gap * sigma, sigma, bias) == pytest.approx(integrated, abs=1e-7)
    empirical = lossless_accept_rate(mu_p, mu_q, sigma, bias, n_draws, seed=11)
    stderr = math.sqrt(max(integrated * (1 - integrated), 1e-4) / n_draws)
    assert abs(empirical - integrated) < 4 * stderr


def test_closed_form_limits():
    for gap in (0.3, 1.0, 3.0):
        tv_overlap = 2 * 0.5 * math.erfc(gap / 2 / math.sqrt(2))  # 2Φ(−Δ/2σ)
        assert lossless_acceptance_prob(gap, 1.0, 1.0) == pytest.approx(tv_overlap)
    assert lossless_acceptance_prob(0.0, 1.0, 1.0) == 1.0
    assert lossless_acceptance_prob(1.0, 1.0, 5.0) > lossless_acceptance_prob(1.0, 1.0, 2.0)
    assert lossless_acceptance_prob(1e-9, 1.0, 3.0) == pytest.approx(1.0)


def test_stochastic_draft_with_wrong_mean_is_rarely_accepted():
    """A confident (small variance) but wrong draft must get the low acceptance E_q[min(1, p/q)],
    not ~100%. Without ½·log(v_q/σ²) in ℓ the same draws would be accepted almost always."""
    sigma, draft_std, n_draws = 1.0, 0.3, 20_000
    mu_p, mu_q = patch_means(delta=1.0)
    gen = torch.Generator().manual_seed(5)
    x = mu_q + draft_std * torch.randn((n_draws, *PATCH), generator=gen, dtype=torch.float64)
    reference_log_ratio = normal_log_prob(x, mu_p, sigma) - normal_log_prob(x, mu_q, draft_std)
    expected = reference_log_ratio.clamp(max=0).exp().mean().item()

    def without_log_var_term(x, mu_p, mu_q, sigma, draft_var):
        return ((x - mu_q) ** 2 / (2 * draft_var) - (x - mu_p) ** 2 / (2 * sigma**2)).sum((-2, -1))

    empirical = lossless_accept_rate(mu_p, mu_q, sigma, 1.0, n_draws, 6, draft_std)
    buggy = lossless_accept_rate(mu_p, mu_q, sigma, 1.0, n_draws, 6, draft_std,
                                 without_log_var_term)
    stderr = math.sqrt(max(expected * (1 - expected), 1e-4) / n_draws)
    assert expected < 0.1
    assert abs(empirical - expected) < 4 * stderr
    assert buggy > 0.9 and abs(buggy - expected) > 100 * stderr


def test_accept_decision_is_strict_log_space():
    log_u = torch.tensor([-0.1, -0.1, float("-inf"), -3.0], dtype=torch.float64)
    log_ratio = torch.tensor([-0.2, 0.0, float("-inf"), -4.0], dtype=torch.float64)
    assert accept(log_u, log_ratio, 0.0).tolist() == [False, True, False, False]
    assert accept(log_u, log_ratio, math.log(3.0)).tolist() == [True, True, False, True]


@pytest.mark.parametrize("draft_std", [None, 0.6])
def test_one_step_with_residual_is_distributed_as_p(draft_std):
    """b = 1: accept x ~ q w.p. min(1, p/q), else draw from the residual. The emitted patch must be
    N(μ_p, σ²I): check every value's mean and variance, and the gap direction's KS distance."""
    sigma, n_draws = 0.8, 12_000
    mu_p, mu_q = patch_means(delta=1.2)
    gens = sample_generators(3, range(n_draws))
    std = sigma if draft_std is None else draft_std
    draft_var = None if draft_std is None else torch.full((n_draws, *PATCH), draft_std**2,
                                                           dtype=torch.float64)
    mu_p_rows, mu_q_rows = mu_p.expand(n_draws, *PATCH), mu_q.expand(n_draws, *PATCH)
    x = mu_q + std * normal_draws(gens, PATCH, "cpu")
    log_u = log_uniform_draws(gens, [1] * n_draws, "cpu")[:, 0]
    accepted = accept(log_u, lossless_log_ratio(x, mu_p, mu_q, sigma, draft_var), 0.0)
    rejected = (~accepted).nonzero().squeeze(1)
    residual, fell_back = sample_residual(
        mu_p_rows[rejected], mu_q_rows[rejected], sigma, 0.0,
        [gens[i] for i in rejected.tolist()], 100,
        None if draft_var is None else draft_var[rejected])
    emitted = x.clone()
    emitted[rejected] = residual
    assert not fell_back.any()

    z = (emitted - mu_p) / sigma
    mean_err = z.mean(0).abs().max().item()
    var_err = (z.var(0) - 1).abs().max().item()
    assert mean_err < 4.5 / math.sqrt(n_draws)
    assert var_err < 4.5 * math.sqrt(2 / n_draws)
    direction = (mu_p - mu_q) / (mu_p - mu_q).norm()
    along = (z * direction).sum((-2, -1)).sort().values
    normal_cdf = Normal(0.0, 1.0).cdf(along)
    ks = (torch.arange(1, n_draws + 1) / n_draws - normal_cdf).abs().max().item()
    assert ks < 1.95 / math.sqrt(n_draws)  # KS critical value at level 0.001


def test_residual_sampler_falls_back_and_counts_when_no_residual_mass():
    sigma, rows = 1.0, 6
    mu = torch.zeros((rows, *PATCH), dtype=torch.float64)
    draws, fell_back = sample_residual(mu, mu, sigma, 0.0, sample_generators(0, range(rows)), 5)
    assert fell_back.all()  # p == q: the residual max(0, p − q) is empty
    assert torch.isfinite(draws).all() and draws.std() > 0.5


def test_residual_draws_are_reproducible_per_row():
    mu_p, mu_q = patch_means(delta=0.7)
    rows = 5
    gens_all = sample_generators(9, range(rows))
    together, _ = sample_residual(mu_p.expand(rows, *PATCH), mu_q.expand(rows, *PATCH), 1.0, 0.0,
                                  gens_all, 100)
    for i in range(rows):
        alone, _ = sample_residual(mu_p[None], mu_q[None], 1.0, 0.0,
                                   sample_generators(9, [i]), 100)
        torch.testing.assert_close(alone[0], together[i])


def test_the_rule_is_chosen_by_the_acceptance_mode():
    assert isinstance(acceptance_rule(SpecConfig(accept_mode="lossless")), LosslessRule)
    assert isinstance(acceptance_rule(SpecConfig(accept_mode="tolerance")), ToleranceRule)
    with pytest.raises(ValueError, match="unknown acceptance mode 'exact'"):
        acceptance_rule(SpecConfig(accept_mode="exact"))


def one_round_of(rule, mu_p, mu_q, generators):
    """(proposal, log-ratio, final patch, fallbacks) of one row proposing one patch that is accepted."""
    x = rule.propose(mu_q[None], None, generators)
    proposals = Proposals(x[:, None], mu_q[None, None])
    log_ratio = rule.log_ratio(proposals, mu_p[None, None])
    final, fallbacks = rule.final(mu_p[None], proposals, torch.tensor([1]), torch.tensor([1]), generators)
    return x[0], log_ratio[0, 0], final[0], fallbacks


def test_tolerance_proposes_the_means_and_emits_mu_p_drawing_nothing():
    sigma, (mu_p, mu_q) = 0.5, patch_means(0.3)
    generators = sample_generators(3, [0])
    x, log_ratio, final, fallbacks = one_round_of(ToleranceRule(SpecConfig(sigma=sigma)), mu_p, mu_q, generators)
    assert torch.equal(x, mu_q) and torch.equal(final, mu_p) and fallbacks == 0
    assert log_ratio == tolerance_log_ratio(mu_p, mu_q, sigma)
    assert torch.equal(generators[0].get_state(), sample_generators(3, [0])[0].get_state())


def test_lossless_draws_the_proposal_then_the_bonus_from_the_rows_stream():
    """x = μ_q + σε₁, the log-ratio ℓ(x), and the bonus μ_p + σε₂, ε₁ and ε₂ in that order from the row's stream."""
    sigma, (mu_p, mu_q) = 0.5, patch_means(0.3)
    rule = LosslessRule(SpecConfig(sigma=sigma, accept_mode="lossless"))
    x, log_ratio, final, fallbacks = one_round_of(rule, mu_p, mu_q, sample_generators(3, [0]))
    noise = normal_draws(sample_generators(3, [0]) * 2, PATCH, "cpu")
    torch.testing.assert_close(x, mu_q + sigma * noise[0], rtol=0, atol=0)
    torch.testing.assert_close(final, mu_p + sigma * noise[1], rtol=0, atol=0)
    assert log_ratio == lossless_log_ratio(x, mu_p, mu_q, sigma) and fallbacks == 0

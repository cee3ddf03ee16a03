"""Acceptance rules of speculative decoding (speculative.md section 4), in one place: the formulas, and one
object per rule (ToleranceRule, LosslessRule, chosen by acceptance_rule from --spec_accept_mode) that owns
what the draft proposes, the log-ratio and the patch after the accepted proposals.

All rules work on whole patches: tensors [..., P, C] whose last two dims hold the n = P·C values
of one patch; a rule returns one float64 value per patch. Everything is in float64 and in log
space: p(x) and q(x) themselves are never formed.

Both modes reduce to one decision, accept iff log U < min(0, log_ratio + log b):
- tolerance: log_ratio = −‖μ_p − μ_q‖² / (2σ²n), a Gaussian likelihood ratio with a per-value
  temperature, so α = min(1, b·exp(−‖μ_p − μ_q‖² / (2σ²n))).
- lossless: log_ratio = ℓ(x) = log p(x) − log q(x) with p = N(μ_p, σ²I) and q the draft density
  (N(μ_q, diag v_q) for a stochastic draft, N(μ_q, σ²I) otherwise).
"""
import math

import torch

from speculative.random_streams import log_uniform_draws, normal_draws

PATCH_DIMS = (-2, -1)


def _f64(*tensors):
    return [torch.as_tensor(t).double() for t in tensors]


def gaussian_log_density(x, mean, var):
    """log N(x; mean, diag(var)) of each patch with all normalising constants.

    var is a tensor broadcastable to x or a float (isotropic variance)."""
    x, mean, var = _f64(x, mean, var)
    var = var.to(x.device).expand_as(x)
    return -0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var)).sum(dim=PATCH_DIMS)


def tolerance_log_ratio(mu_p, mu_q, sigma):
    """−‖μ_p − μ_q‖² / (2σ²n): log α of the tolerance rule before the bias (section 4.1)."""
    mu_p, mu_q = _f64(mu_p, mu_q)
    n = mu_p.shape[-2] * mu_p.shape[-1]
    return -((mu_p - mu_q) ** 2).sum(dim=PATCH_DIMS) / (2 * sigma**2 * n)


def lossless_log_ratio(x, mu_p, mu_q, sigma, draft_var=None):
    """ℓ(x) = log N(x; μ_p, σ²I) − log q(x), all normalising constants included (section 4.2).

    draft_var=None means q = N(μ_q, σ²I): then the constants cancel exactly and
    ℓ = Σ (μ_p − μ_q)(2x − μ_p − μ_q) / (2σ²), which avoids subtracting two large sums.
    Otherwise q = N(μ_q, diag(draft_var)) and
    ℓ = Σ [½ log(v_q/σ²) + (x − μ_q)²/(2v_q) − (x − μ_p)²/(2σ²)].
    """
    x, mu_p, mu_q = _f64(x, mu_p, mu_q)
    if draft_var is None:
        return ((mu_p - mu_q) * (2 * x - mu_p - mu_q)).sum(dim=PATCH_DIMS) / (2 * sigma**2)
    var_q = draft_var.double()
    per_value = (0.5 * torch.log(var_q / sigma**2) + (x - mu_q) ** 2 / (2 * var_q)
                 - (x - mu_p) ** 2 / (2 * sigma**2))
    return per_value.sum(dim=PATCH_DIMS)


def log_accept_prob(log_ratio, log_bias):
    """log min(1, b·ratio)."""
    return (log_ratio + log_bias).clamp(max=0.0)


def accept(log_u, log_ratio, log_bias):
    """The accept decision log U < min(0, log_ratio + log b) (NaN ratios reject)."""
    return log_u < log_accept_prob(log_ratio, log_bias)


def residual_log_keep_prob(log_ratio, log_bias):
    """log max(0, 1 − exp(−ℓ(y) − log b)): keep probability of y ~ p in the residual sampler."""
    return torch.log((-torch.expm1(-(log_ratio + log_bias))).clamp(min=0.0))


def sample_residual(mu_p, mu_q, sigma, log_bias, generators, max_tries, draft_var=None):
    """Draw from the residual r ∝ max(0, p − q/b), one patch per row, by rejection sampling.

    Each try proposes y ~ p = N(μ_p, σ²I) and keeps it with probability
    max(0, 1 − exp(−ℓ(y) − log b)). A row still empty after max_tries gets a plain draw from p.
    Row i draws only from generators[i], in the order ε, U, ε, U, ... (then ε for a fallback).
    Returns (draws float64 [A, P, C], fell_back bool [A]).
    """
    mu_p = mu_p.double()
    patch_shape, device = mu_p.shape[1:], mu_p.device
    draws = torch.empty_like(mu_p)
    pending = torch.arange(len(generators), device=device)
    for _ in range(max_tries):
        if len(pending) == 0:
            break
        gens = [generators[i] for i in pending.tolist()]
        y = mu_p[pending] + sigma * normal_draws(gens, patch_shape, device)
        log_u = log_uniform_draws(gens, [1] * len(gens), device)[:, 0]
        log_ratio = lossless_log_ratio(y, mu_p[pending], mu_q[pending], sigma,
                                       None if draft_var is None else draft_var[pending])
        keep = log_u < residual_log_keep_prob(log_ratio, log_bias)
        draws[pending[keep]] = y[keep]
        pending = pending[~keep]
    gens = [generators[i] for i in pending.tolist()]
    draws[pending] = mu_p[pending] + sigma * normal_draws(gens, patch_shape, device)
    fell_back = torch.zeros(len(generators), dtype=torch.bool, device=device)
    fell_back[pending] = True
    return draws, fell_back


def _std_normal_cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def lossless_acceptance_prob(delta, sigma, bias=1.0):
    """Closed-form acceptance probability of the lossless rule for equal variances (q = N(μ_q, σ²I)):
    α(b) = Φ((ln b − m)/s) + b·Φ((−ln b − m)/s), m = Δ²/(2σ²), s = Δ/σ, Δ = ‖μ_p − μ_q‖.
    At b = 1 this is 2Φ(−Δ/2σ); at Δ = 0 it is 1."""
    if delta == 0:
        return 1.0
    m, s, log_b = delta**2 / (2 * sigma**2), delta / sigma, math.log(bias)
    return _std_normal_cdf((log_b - m) / s) + bias * _std_normal_cdf((-log_b - m) / s)


class ToleranceRule:
    """Tolerance (section 4.1): the draft proposes its means, the log-ratio is tolerance_log_ratio, and the
    patch after the accepted proposals (correction or bonus) is the target's mean there."""
    draws_final = False

    def __init__(self, config):
        self.sigma = config.sigma

    def propose(self, mean, var, generators):
        return mean

    def log_ratio(self, proposals, mu_p):
        return tolerance_log_ratio(mu_p, proposals.mu_q, self.sigma)

    def final(self, mu_p_at, proposals, n_accepted, k_eff, generators):
        """(The final patches [A, P, C], the number of residual fallbacks: none)."""
        return mu_p_at, 0


class LosslessRule:
    """Lossless (section 4.2): the draft proposes x ~ q = N(μ_q, diag v_q) (a stochastic draft's variance) or
    N(μ_q, σ²I), the log-ratio is ℓ(x), and the final patch is drawn: from the residual at the first rejection
    (sample_residual), from p = N(μ_p, σ²I) as the bonus."""
    draws_final = True

    def __init__(self, config):
        self.sigma, self.log_bias, self.max_tries = config.sigma, config.log_bias, config.residual_max_tries

    def propose(self, mean, var, generators):
        std = self.sigma if var is None else var.sqrt()
        noise = normal_draws(generators, mean.shape[1:], mean.device)
        return (mean.double() + std * noise).to(mean.dtype)

    def log_ratio(self, proposals, mu_p):
        return lossless_log_ratio(proposals.x, mu_p, proposals.mu_q, self.sigma, proposals.var_q)

    def final(self, mu_p_at, proposals, n_accepted, k_eff, generators):
        """(The final patches [A, P, C] float64, the number of residual samplers that fell back to p).
        n_accepted and k_eff [A] are on the CPU; the rows that accepted all draw the bonus first."""
        final = mu_p_at.to(torch.float64, copy=True)
        rejected = n_accepted < k_eff
        bonus = (~rejected).nonzero().squeeze(1)
        final[bonus.to(final.device)] += self.sigma * normal_draws([generators[a] for a in bonus.tolist()],
                                                                   final.shape[1:], final.device)
        rows = rejected.nonzero().squeeze(1)
        if not len(rows):
            return final, 0
        at = (rows.to(final.device), n_accepted[rows].to(final.device))
        var_q = None if proposals.var_q is None else proposals.var_q[at]
        final[at[0]], fell_back = sample_residual(mu_p_at[at[0]], proposals.mu_q[at], self.sigma, self.log_bias,
                                                  [generators[a] for a in rows.tolist()], self.max_tries, var_q)
        return final, int(fell_back.sum())


RULES = {"tolerance": ToleranceRule, "lossless": LosslessRule}


def acceptance_rule(config):
    """The rule of config.accept_mode."""
    if config.accept_mode not in RULES:
        raise ValueError(f"unknown acceptance mode '{config.accept_mode}'; valid: {', '.join(RULES)}")
    return RULES[config.accept_mode](config)

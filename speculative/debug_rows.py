"""Per-proposal debug rows (--spec_debug_accept, speculative.md 7), built from recorded rounds
outside the timed region.

One row per tested proposal (kind `proposal`) and one per emitted correction (kind `target_draw`;
bonus patches get no row). ξ is the patch the row is about: the proposal, or the emitted correction.
μ_p and μ_q are the target and draft means at that position (for a correction: those of the
rejected proposal it replaces). Columns:
  batch_idx        caller's batch index
  round_i          round of the batch (0-based)
  sample_idx       global sample id
  kind             proposal | target_draw
  alpha            acceptance probability min(1, b·ratio) (proposal only)
  r                the uniform U that decided (proposal only)
  tol_accept       1 if the tolerance rule with draft means and the same U accepts (proposal only;
                   equals accept in tolerance mode)
  accept           1 accepted, 0 rejected (proposal only)
  mse              mean over the n values of (μ_p − μ_q)²
  sse_p, sse_q     Σ (ξ − μ_p)², Σ (ξ − μ_q)²
  logp             log N(ξ; μ_p, σ²I), all constants
  logq             log q(ξ), q = N(μ_q, diag v_q) (stochastic draft) or N(μ_q, σ²I), all constants
  log_ratio        proposal: the log-ratio the rule used (tolerance: −‖μ_p − μ_q‖²/(2σ²n);
                   lossless: ℓ(ξ)); target_draw: logp − logq
  ratio            exp(log_ratio)
  sigma_eff        sqrt(mean_j v_q,j): the draft's std per value (σ for a point draft)
  sigma_mode       fixed (q uses σ) | draft_logvar (q uses the draft's log-variance)
  bias             b
  mean_xi_minus_q, var_xi_minus_q   mean and population variance over the patch of ξ − μ_q
  mean_xi_minus_p, var_xi_minus_p   the same for ξ − μ_p
NaN marks a column that does not apply.
"""
from dataclasses import dataclass

import torch

from speculative.acceptance import (PATCH_DIMS, accept, gaussian_log_density, log_accept_prob,
                                    tolerance_log_ratio)

NAN = float("nan")
DEBUG_COLUMNS = ("batch_idx,round_i,sample_idx,kind,alpha,r,tol_accept,accept,mse,sse_p,sse_q,"
                 "logp,logq,log_ratio,ratio,sigma_eff,sigma_mode,bias,mean_xi_minus_q,"
                 "var_xi_minus_q,mean_xi_minus_p,var_xi_minus_p").split(",")


@dataclass
class RoundRecord:
    """What one round decided, kept by reference while timing; tensors [A, ...] of the active rows."""
    batch_idx: int
    round_i: int
    sample_ids: list
    k_eff: torch.Tensor
    proposals: object       # speculative.proposer.Proposals
    mu_p: torch.Tensor
    final: torch.Tensor
    log_ratio: torch.Tensor
    log_u: torch.Tensor
    accepted: torch.Tensor
    n_accepted: torch.Tensor


def debug_rows(record, config):
    """The CSV rows (dicts keyed by DEBUG_COLUMNS) of one recorded round."""
    k_eff, n_accepted = record.k_eff.cpu(), record.n_accepted.cpu()
    x, mu_q = record.proposals.x.cpu(), record.proposals.mu_q.cpu()
    var_q = None if record.proposals.var_q is None else record.proposals.var_q.cpu()
    mu_p, final = record.mu_p.cpu(), record.final.cpu()
    log_ratio, log_u, accepted = record.log_ratio.cpu(), record.log_u.cpu(), record.accepted.cpu()
    slot = torch.arange(x.shape[1])[None]
    tested = (slot <= n_accepted[:, None]) & (slot < k_eff[:, None])
    mu_p_tested = mu_p[:, :x.shape[1]][tested]
    stats = _diagnostics(x[tested], mu_p_tested, mu_q[tested], None if var_q is None else var_q[tested], config.sigma)
    stats.update(alpha=log_accept_prob(log_ratio[tested], config.log_bias).exp(),
                 r=log_u[tested].exp(),
                 tol_accept=accept(log_u[tested], tolerance_log_ratio(mu_p_tested, mu_q[tested], config.sigma),
                                   config.log_bias).double(),
                 accept=accepted[tested].double(),
                 log_ratio=log_ratio[tested])
    rows = _rows("proposal", tested.nonzero()[:, 0].tolist(), stats, record, config)

    rejected = (n_accepted < k_eff).nonzero().squeeze(1)
    at = (rejected, n_accepted[rejected])
    stats = _diagnostics(final[rejected], mu_p[at], mu_q[at], None if var_q is None else var_q[at], config.sigma)
    stats["log_ratio"] = stats["logp"] - stats["logq"]
    return rows + _rows("target_draw", rejected.tolist(), stats, record, config)


def _rows(kind, row_of_entry, columns, record, config):
    """One row per entry; columns maps a column name to one value per entry."""
    columns = dict(columns, ratio=columns["log_ratio"].exp())
    columns = {name: values.tolist() for name, values in columns.items()}
    fixed = {"batch_idx": record.batch_idx, "round_i": record.round_i, "kind": kind,
             "sigma_mode": "draft_logvar" if config.draft_stochastic else "fixed", "bias": config.bias}
    rows = []
    for j, a in enumerate(row_of_entry):
        row = dict.fromkeys(DEBUG_COLUMNS, NAN)
        row.update(fixed, sample_idx=int(record.sample_ids[a]))
        row.update((name, values[j]) for name, values in columns.items())
        rows.append(row)
    return rows


def _diagnostics(xi, mu_p, mu_q, var_q, sigma):
    """Debug columns of patches ξ [M, P, C] against μ_p and μ_q: {column: [M] float64}."""
    xi, mu_p, mu_q = (t.double() for t in (xi, mu_p, mu_q))
    q_var = torch.full_like(xi, sigma**2) if var_q is None else var_q.double()
    minus_q, minus_p = xi - mu_q, xi - mu_p
    stats = {"mse": ((mu_p - mu_q) ** 2).mean(dim=PATCH_DIMS),
             "sse_p": (minus_p ** 2).sum(dim=PATCH_DIMS),
             "sse_q": (minus_q ** 2).sum(dim=PATCH_DIMS),
             "logp": gaussian_log_density(xi, mu_p, sigma**2),
             "logq": gaussian_log_density(xi, mu_q, q_var),
             "sigma_eff": q_var.mean(dim=PATCH_DIMS).sqrt()}
    for name, diff in (("xi_minus_q", minus_q), ("xi_minus_p", minus_p)):
        mean = diff.mean(dim=PATCH_DIMS)
        stats[f"mean_{name}"] = mean
        stats[f"var_{name}"] = ((diff - mean[:, None, None]) ** 2).mean(dim=PATCH_DIMS)
    return stats

"""Speculative decoding for patch forecasters (speculative.md sections 3-5), `sliding` rollout.

One round, per active sample: the draft proposes k_eff patches autoregressively, ONE target call
on the k_eff+1 stacked windows (prefix, prefix+x1, ..., prefix+x1..x_keff, each the last L
points) gives μ_p,1 .. μ_p,keff+1, proposals are accepted in order (utils/acceptance.py), and the
round emits the accepted ones plus a correction (first rejection) or the bonus (all accepted).

Ragged batches: every sample keeps its own window and emitted patches; a sample leaves the active
batch as soon as it has S = ceil(H/P) patches. The last rounds propose only what is still needed:
k_eff = min(K, S − emitted − 1), so a round never produces surplus patches and every proposal that
is made can be tested (a sample with one patch left runs a plain target step, k_eff = 0).

Randomness: sample i draws from its own CPU generator seeded from (config.seed, sample_ids[i]),
per round in the order: lossless proposals ε_1..ε_keff, uniforms U_1..U_keff, then either the
residual tries (ε, U, ε, U, ...) or the bonus ε. Its output therefore does not depend on the batch
it is in nor on the other samples.

Counters (SpecCounters) are per sample, summed over samples: a round of 8 active samples adds 8
rounds and 8 target calls (one verify pass each, batched into one forward call); draft_calls
counts per-sample draft steps, i.e. proposals made. The tracer (SpecTracer) counts batched forward
calls and times sections.

Adaptive K (config.adaptive, --spec_adaptive): before each round, the K of that round (the same
for all active samples, still capped per sample by what it needs) is the K in 1..config.k that
maximises the predicted speedup S(α̂, K, c, v = 1) (adaptive_k), with α̂ = (accepted + 1) /
(attempted + 2) over this generate() call's samples so far and c = (draft time per draft call) /
(target time per verify call) from the tracer's running totals; until the tracer has timed both,
K = config.k. Only the number of proposals changes, never the acceptance rule, so lossless
output keeps the target's distribution; but K then depends on the other samples and on timings,
so a sample's output is no longer independent of its batch nor bit-reproducible.

The rollout is isolated in SlidingWindows (begin_round / draft_step / extend_draft / verify /
commit): a `cached` rollout with KV caches implements the same five methods.

Per-proposal debug rows (`debug_rows`, written by utils/spec_report.write_debug_csv), one per
tested proposal (kind `proposal`) and one per emitted correction (kind `target_draw`; bonus
patches get no row). ξ is the patch the row is about: the proposal, or the emitted correction.
μ_p and μ_q are the target and draft means at that position (for a correction: those of the
rejected proposal it replaces). Columns:
  batch_idx        caller's batch index (generate(..., batch_idx=))
  round_i          round of the sample (0-based; equals the batch's round count)
  sample_idx       global sample id (sample_ids)
  kind             proposal | target_draw
  alpha            acceptance probability min(1, b·ratio) (proposal only)
  r                the uniform U that decided (proposal only)
  tol_accept       1 if the tolerance rule with draft means and the same U accepts (proposal only;
                   equals accept in tolerance mode)
  accept           1 accepted, 0 rejected (proposal only)
  mse              mean over the n values of (μ_p − μ_q)²
  sse_p            Σ (ξ − μ_p)²
  sse_q            Σ (ξ − μ_q)²
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
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from utils.acceptance import (PATCH_DIMS, accept, gaussian_log_density, log_accept_prob,
                              lossless_log_ratio, predicted_speedup, sample_residual,
                              tolerance_log_ratio)
from utils.rollout import last_token, log_uniform_draws, normal_draws, sample_generators
from utils.stopwatch import Stopwatch

NAN = float("nan")
DEBUG_COLUMNS = ("batch_idx,round_i,sample_idx,kind,alpha,r,tol_accept,accept,mse,sse_p,sse_q,"
                 "logp,logq,log_ratio,ratio,sigma_eff,sigma_mode,bias,mean_xi_minus_q,"
                 "var_xi_minus_q,mean_xi_minus_p,var_xi_minus_p").split(",")


@dataclass
class SpecConfig:
    """Flags: --spec_k (the maximum K when adaptive), --spec_sigma, --spec_accept_bias,
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

    def __post_init__(self):
        checks = [(self.k >= 1, "--spec_k must be >= 1", self.k),
                  (self.sigma > 0, "--spec_sigma must be > 0", self.sigma),
                  (self.bias >= 1, "--spec_accept_bias must be >= 1", self.bias),
                  (self.accept_mode in ("tolerance", "lossless"),
                   "--spec_accept_mode must be tolerance or lossless", self.accept_mode),
                  (self.residual_max_tries >= 1, "--spec_residual_max_tries must be >= 1",
                   self.residual_max_tries)]
        for ok, message, value in checks:
            if not ok:
                raise ValueError(f"{message}, got {value!r}")

    @property
    def log_bias(self):
        return math.log(self.bias)


@dataclass
class SpecCounters:
    """Per-sample counts summed over samples and batches (see the module docstring)."""
    attempted: int = 0
    accepted: int = 0
    rounds: int = 0
    target_calls: int = 0
    draft_calls: int = 0
    patches_emitted: int = 0
    residual_fallbacks: int = 0

    @property
    def acceptance_pct(self):
        return 100.0 * self.accepted / self.attempted if self.attempted else NAN

    @property
    def patches_per_target_call(self):
        return self.patches_emitted / self.target_calls if self.target_calls else NAN


@dataclass
class SpecTracer:
    """Wall time per section of generation, summed over batches; n_* count batched calls.

    draft: draft forward + drawing the proposal + moving the draft window, per draft step.
    prep_verify: stacking the K+1 windows. target_verify: the target call.
    target_sample: drawing bonus/correction patches from p (lossless; n = rounds that drew).
    accept_cpu: log-ratios, uniforms, decisions and the ragged bookkeeping.
    """
    t_draft_total: float = 0.0
    n_draft_calls: int = 0
    t_prep_verify_total: float = 0.0
    t_target_verify_total: float = 0.0
    n_target_verify_calls: int = 0
    t_target_sample_total: float = 0.0
    n_target_sample_calls: int = 0
    t_accept_cpu_total: float = 0.0

    def cost_ratio(self):
        """c = draft time per draft call / target time per verify call, None until both are timed."""
        if not (self.n_draft_calls and self.n_target_verify_calls and self.t_target_verify_total > 0):
            return None
        return (self.t_draft_total / self.n_draft_calls) / (
            self.t_target_verify_total / self.n_target_verify_calls)

    @contextmanager
    def timed(self, section, device):
        with Stopwatch(device) as watch:
            yield
        total = f"t_{section}_total"
        setattr(self, total, getattr(self, total) + watch.seconds)
        count = f"n_{section}_calls"
        if hasattr(self, count):
            setattr(self, count, getattr(self, count) + 1)


@dataclass
class _Round:
    """The active samples of one round: batch positions (CPU), their k_eff, generators, ids."""
    rows: torch.Tensor
    k_eff: torch.Tensor
    generators: list
    sample_ids: list
    index: int
    batch_idx: int


def adaptive_k(alpha, k_max, c, v=1.0):
    """The K in 1..k_max with the largest predicted speedup S(alpha, K, c, v); max() keeps the
    first, i.e. the smallest K, on ties."""
    return max(range(1, k_max + 1), key=lambda k: predicted_speedup(alpha, k, c, v))


def _windows_along(seq, window_len, patch_len):
    """All windows of window_len points at patch strides: [A, T, C] -> [A, n_windows, L, C]."""
    return seq.unfold(1, window_len, patch_len).transpose(-1, -2)


class SlidingWindows:
    """`sliding` rollout state: each sample's model input is the last L points of its context and
    emitted patches, recomputed from scratch at every step (no cache)."""

    def __init__(self, target, draft, x, patch_len, tracer):
        self.target, self.draft, self.tracer = target, draft, tracer
        self.patch_len, self.window_len = patch_len, x.shape[1]
        self.windows = x.clone()

    def begin_round(self, rows):
        """Start a round for the batch rows `rows`; later calls index into this active set."""
        self.rows = rows
        self.draft_windows = self.windows[rows]

    def draft_step(self, sub):
        """(mean, logvar) of the draft's next patch for round positions `sub`."""
        return self._last_patch(self.draft, self.draft_windows[sub])

    def extend_draft(self, sub, patch):
        self.draft_windows[sub] = torch.cat([self.draft_windows[sub, self.patch_len:], patch], 1)

    def verify(self, proposals, k_eff):
        """ONE target call on every sample's k_eff+1 windows; returns μ_p [A, K+1, P, C] with
        μ_p[a, i] the prediction after prefix + proposals 1..i (NaN beyond k_eff[a])."""
        device = proposals.device
        with self.tracer.timed("prep_verify", device):
            seq = torch.cat([self.windows[self.rows], proposals.flatten(1, 2)], dim=1)
            candidates = _windows_along(seq, self.window_len, self.patch_len)
            valid = torch.arange(candidates.shape[1], device=device)[None] <= k_eff[:, None]
            stacked = candidates[valid]
        with self.tracer.timed("target_verify", device):
            mean, _ = self._last_patch(self.target, stacked)
        mu_p = torch.full(candidates.shape[:2] + mean.shape[1:], NAN,
                          dtype=mean.dtype, device=device)
        mu_p[valid] = mean
        return mu_p

    def commit(self, block, n_emitted):
        """Append the first n_emitted[a] patches of block[a] to sample a's window."""
        seq = torch.cat([self.windows[self.rows], block.flatten(1, 2)], dim=1)
        windows = _windows_along(seq, self.window_len, self.patch_len)
        self.windows[self.rows] = windows[torch.arange(len(block)), n_emitted]

    def _last_patch(self, model, windows):
        mean, logvar = last_token(model, windows, self.patch_len)
        if mean.shape[1] != self.patch_len:
            raise ValueError("speculative decoding needs output_token_len == input_token_len, "
                             f"got {mean.shape[1]} predicted points per token of {self.patch_len}")
        return mean, logvar


class SpeculativeDecoder:
    """Target and draft are callables window [B, L, C] -> [B, L, C] (O = P); a stochastic draft
    returns (mean, logvar). counters and tracer accumulate across generate() calls; debug_rows,
    when a list, receives one dict per tested proposal and per correction."""

    def __init__(self, target, draft, config, counters, tracer, debug_rows=None):
        self.target, self.draft, self.config = target, draft, config
        self.counters, self.tracer, self.debug_rows = counters, tracer, debug_rows

    @torch.no_grad()
    def generate(self, x, horizon, sample_ids, batch_idx=0):
        """Forecast `horizon` steps for x [B, L, C]; sample_ids are the samples' global indices
        (they seed the per-sample generators). Returns [B, horizon, C]."""
        P, K = self.config.patch_len, self.config.k
        n_patches = math.ceil(horizon / P)
        self.device = x.device
        generators = sample_generators(self.config.seed, sample_ids)
        windows = SlidingWindows(self.target, self.draft, x, P, self.tracer)
        patches = torch.full((x.shape[0], n_patches, P, x.shape[2]), NAN,
                             dtype=x.dtype, device=x.device)
        n_done = torch.zeros(x.shape[0], dtype=torch.long)
        round_i, start = 0, (self.counters.accepted, self.counters.attempted)
        while (n_done < n_patches).any():
            rows = (n_done < n_patches).nonzero().squeeze(1)
            if self.config.adaptive:
                K = self._adaptive_k(*start)
            k_eff = (n_patches - 1 - n_done[rows]).clamp(max=K)
            round_ = _Round(rows, k_eff, [generators[i] for i in rows.tolist()],
                            [sample_ids[i] for i in rows.tolist()], round_i, batch_idx)
            block, n_emitted = self._run_round(windows, round_)
            with self.tracer.timed("accept_cpu", x.device):
                _scatter_emitted(patches, rows, n_done[rows], block, n_emitted)
            n_done[rows] += n_emitted
            round_i += 1
        return patches.flatten(1, 2)[:, :horizon]

    def _adaptive_k(self, accepted_before, attempted_before):
        """K of the next round from the acceptance of this call so far (Laplace-smoothed) and the
        tracer's running cost ratio c (v = 1: the verify call is the unit)."""
        c = self.tracer.cost_ratio()
        if c is None:
            return self.config.k
        accepted = self.counters.accepted - accepted_before
        attempted = self.counters.attempted - attempted_before
        return adaptive_k((accepted + 1) / (attempted + 2), self.config.k, c)

    def _run_round(self, windows, round_):
        """One round for the active samples; returns the emitted patches [A, K+1, P, C] (row a
        valid up to n_emitted[a]) and n_emitted [A] (CPU)."""
        device = self.device
        windows.begin_round(round_.rows)
        proposals, mu_q, var_q = self._propose(windows, round_)
        mu_p = windows.verify(proposals, round_.k_eff.to(device))
        with self.tracer.timed("accept_cpu", device):
            log_ratio, log_u, accepted = self._test_proposals(proposals, mu_p, mu_q, var_q, round_)
            n_accepted = accepted.long().cumprod(1).sum(1)
        final = self._final_patches(mu_p, mu_q, var_q, n_accepted, round_)
        with self.tracer.timed("accept_cpu", device):
            final_slot = proposals.new_full((len(proposals), 1) + proposals.shape[2:], NAN)
            block = torch.cat([proposals, final_slot], dim=1)
            block[torch.arange(len(block)), n_accepted] = final.to(block.dtype)
            n_emitted = n_accepted + 1
            windows.commit(block, n_emitted)
            self._count(round_, n_accepted, n_emitted)
        if self.debug_rows is not None:
            self._record_debug(proposals, mu_p, mu_q, var_q, final, log_ratio, log_u, accepted,
                               n_accepted, round_)
        return block, n_emitted

    def _propose(self, windows, round_):
        """k_eff draft steps per sample. Returns proposals, draft means, draft variances (None for
        a point draft), each [A, K, P, C] and NaN past k_eff[a]."""
        k_max = int(round_.k_eff.max())
        like = windows.windows
        shape = (len(round_.k_eff), k_max, self.config.patch_len, like.shape[2])
        proposals = torch.full(shape, NAN, dtype=like.dtype, device=like.device)
        mu_q = torch.full_like(proposals, NAN)
        var_q = (torch.full(shape, NAN, dtype=torch.float64, device=like.device)
                 if self.config.draft_stochastic else None)
        for i in range(k_max):
            sub = (round_.k_eff > i).nonzero().squeeze(1)
            with self.tracer.timed("draft", self.device):
                mean, logvar = windows.draft_step(sub)
                var = self._draft_variance(logvar)
                proposal = self._draw_proposal(mean, var, [round_.generators[a] for a in sub])
                windows.extend_draft(sub, proposal)
            proposals[sub, i], mu_q[sub, i] = proposal, mean
            if var is not None:
                var_q[sub, i] = var
            self.counters.draft_calls += len(sub)
        return proposals, mu_q, var_q

    def _draft_variance(self, logvar):
        """Per-value variance of q: exp(logvar) for a stochastic draft, None (σ²) otherwise."""
        if (logvar is not None) != self.config.draft_stochastic:
            raise ValueError("--draft_stochastic must match the draft: it is "
                             f"{self.config.draft_stochastic} but the draft returns "
                             f"{'(mean, logvar)' if logvar is not None else 'a point forecast'}")
        return None if logvar is None else logvar.double().exp()

    def _draw_proposal(self, mean, var, generators):
        """Tolerance: the draft mean. Lossless: x ~ q = N(μ_q, diag var) (var None: σ²I)."""
        if self.config.accept_mode == "tolerance":
            return mean
        std = self.config.sigma if var is None else var.sqrt()
        noise = normal_draws(generators, mean.shape[1:], mean.device)
        return (mean.double() + std * noise).to(mean.dtype)

    def _test_proposals(self, proposals, mu_p, mu_q, var_q, round_):
        """Log-ratios, log U and accept decisions [A, K] (CPU); untested slots never accept."""
        cfg, k_max = self.config, proposals.shape[1]
        if cfg.accept_mode == "tolerance":
            log_ratio = tolerance_log_ratio(mu_p[:, :k_max], mu_q, cfg.sigma)
        else:
            log_ratio = lossless_log_ratio(proposals, mu_p[:, :k_max], mu_q, cfg.sigma, var_q)
        log_ratio = log_ratio.cpu()
        log_u = log_uniform_draws(round_.generators, round_.k_eff.tolist(), "cpu")
        return log_ratio, log_u, accept(log_u, log_ratio, cfg.log_bias)

    def _final_patches(self, mu_p, mu_q, var_q, n_accepted, round_):
        """The patch after the accepted proposals, [A, P, C]: the correction at the first
        rejection or the bonus μ_p,k_eff+1. Tolerance emits μ_p; lossless draws from the residual
        (correction) or from p (bonus)."""
        cfg, device = self.config, self.device
        mu_p_at = mu_p[torch.arange(len(n_accepted)), n_accepted]
        if cfg.accept_mode == "tolerance":
            return mu_p_at
        with self.tracer.timed("target_sample", device):
            final = mu_p_at.double()
            rejected = n_accepted < round_.k_eff
            bonus = (~rejected).nonzero().squeeze(1)
            bonus_gens = [round_.generators[a] for a in bonus.tolist()]
            final[bonus] += cfg.sigma * normal_draws(bonus_gens, final.shape[1:], device)
            rej = rejected.nonzero().squeeze(1)
            if len(rej):
                at = (rej, n_accepted[rej])
                final[rej], fell_back = sample_residual(
                    mu_p[at], mu_q[at], cfg.sigma, cfg.log_bias,
                    [round_.generators[a] for a in rej.tolist()], cfg.residual_max_tries,
                    None if var_q is None else var_q[at])
                self.counters.residual_fallbacks += int(fell_back.sum())
        return final

    def _count(self, round_, n_accepted, n_emitted):
        c = self.counters
        c.rounds += len(n_accepted)
        c.target_calls += len(n_accepted)
        c.attempted += int(torch.minimum(n_accepted + 1, round_.k_eff).sum())
        c.accepted += int(n_accepted.sum())
        c.patches_emitted += int(n_emitted.sum())

    def _record_debug(self, proposals, mu_p, mu_q, var_q, final, log_ratio, log_u, accepted,
                      n_accepted, round_):
        cfg, k_max = self.config, proposals.shape[1]
        proposals, mu_p, mu_q, final = (t.cpu() for t in (proposals, mu_p, mu_q, final))
        var_q = None if var_q is None else var_q.cpu()
        slot = torch.arange(k_max)[None]
        tested = (slot <= n_accepted[:, None]) & (slot < round_.k_eff[:, None])
        mu_p_tested = mu_p[:, :k_max][tested]
        stats = _diagnostics(proposals[tested], mu_p_tested, mu_q[tested],
                             None if var_q is None else var_q[tested], cfg.sigma)
        tol_ratio = tolerance_log_ratio(mu_p_tested, mu_q[tested], cfg.sigma)
        stats.update(alpha=log_accept_prob(log_ratio[tested], cfg.log_bias).exp(),
                     r=log_u[tested].exp(),
                     tol_accept=accept(log_u[tested], tol_ratio, cfg.log_bias).double(),
                     accept=accepted[tested].double(),
                     log_ratio=log_ratio[tested])
        self._append_debug("proposal", tested.nonzero()[:, 0].tolist(), stats, round_)

        rej = (n_accepted < round_.k_eff).nonzero().squeeze(1)
        at = (rej, n_accepted[rej])
        stats = _diagnostics(final[rej], mu_p[at], mu_q[at],
                             None if var_q is None else var_q[at], cfg.sigma)
        stats["log_ratio"] = stats["logp"] - stats["logq"]
        self._append_debug("target_draw", rej.tolist(), stats, round_)

    def _append_debug(self, kind, row_of_entry, columns, round_):
        """One debug row per entry; columns maps a column name to one value per entry."""
        columns = dict(columns, ratio=columns["log_ratio"].exp())
        columns = {name: values.tolist() for name, values in columns.items()}
        fixed = {"batch_idx": round_.batch_idx, "round_i": round_.index, "kind": kind,
                 "sigma_mode": "draft_logvar" if self.config.draft_stochastic else "fixed",
                 "bias": self.config.bias}
        for j, a in enumerate(row_of_entry):
            row = dict.fromkeys(DEBUG_COLUMNS, NAN)
            row.update(fixed, sample_idx=int(round_.sample_ids[a]))
            row.update((name, values[j]) for name, values in columns.items())
            self.debug_rows.append(row)


def _scatter_emitted(patches, rows, n_done, block, n_emitted):
    """patches[rows[a], n_done[a] + j] = block[a, j] for j < n_emitted[a]."""
    offsets = torch.arange(block.shape[1])
    valid = offsets[None] < n_emitted[:, None]
    sample = rows[:, None].expand_as(valid)[valid]
    position = (n_done[:, None] + offsets[None])[valid]
    patches[sample, position] = block[valid]


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

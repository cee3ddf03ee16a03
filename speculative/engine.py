"""The round loop of speculative decoding (speculative.md sections 3-5).

One round, per active sample: the proposer asks the draft for k_eff patches (k_eff calls, or ONE
call of a one-call draft), ONE target call
verifies them (the rollout), proposals are accepted in order (speculative/acceptance.py), and the
round emits the accepted ones plus a correction (first rejection) or the bonus (all accepted).

Ragged batches: each sample has its own emitted count; a sample leaves the active batch as soon as
it has S = ceil(H/P) patches. The last rounds propose only what is still needed,
k_eff = min(K, S − emitted − 1), so a round never produces surplus patches (a sample with one patch
left runs a plain target step, k_eff = 0).

Randomness: sample i draws from its own CPU generator seeded from (config.seed, sample_ids[i]),
per round in the order: lossless proposals ε_1..ε_keff, uniforms U_1..U_keff, then either the
residual tries (ε, U, ε, U, ...) or the bonus ε. Without --spec_adaptive its output therefore does
not depend on the batch it is in nor on the other samples.

The first generate() call measures the step costs (c, v per K, prefills; speculative/speed_model.py)
on its batch before decoding it, WARM_UP_REPEATS times after an untimed pass; callers make it the
untimed warm-up and add one repeat per later batch with sample_costs(), outside the timed region, so
that the costs are medians over the whole run. With `round_records` set to a list, every round is kept
by reference there, for the debug CSV (speculative/debug_rows.py) to be built outside the timed region.
"""
import math
from contextlib import nullcontext

import torch

from models.output import is_one_call
from speculative.acceptance import accept, acceptance_rule
from speculative.counters import SpecCounters
from speculative.debug_rows import RoundRecord
from speculative.proposer import DraftProposer
from speculative.random_streams import log_uniform_draws, sample_generators
from speculative.rollout_options import RolloutOptions, make_rollout
from speculative.speed_model import StepCosts, measure_step_costs
from speculative.tracer import SectionTimer

WARM_UP_REPEATS = 3


class SpeculativeDecoder:
    def __init__(self, target, draft, config, rollout=RolloutOptions()):
        check_one_call(target, draft, config.k)
        self.target, self.draft, self.config, self.rollout = target, draft, config, rollout
        self.rule = acceptance_rule(config)
        self.costs = None
        self.round_records = None
        self.tally = SpecCounters()  # acceptance over the decoder's lifetime, warm-up included: adaptive K's α̂
        self.reset_counts()

    def reset_counts(self, device="cpu", trace=False):
        """Fresh counters, and section timers (synchronising `device` only when trace is on)."""
        self.counters = SpecCounters()
        self.tracer = SectionTimer(device, trace)
        self.proposer = DraftProposer(self.config, self.rule, self.counters, self.tracer)

    @property
    def proposing_draft(self):
        """The draft, or None with K = 0 (plain target steps: no draft cache is built)."""
        return self.draft if self.config.k else None

    @torch.no_grad()
    def generate(self, x, horizon, sample_ids, batch_idx=0):
        """Forecast `horizon` steps for x [B, L, C]; sample_ids are the samples' global indices.
        Returns [B, horizon, C]."""
        n_patches = math.ceil(horizon / self.config.patch_len)
        if self.costs is None:
            self.sample_costs(x, horizon, WARM_UP_REPEATS)
        rollout = make_rollout(self.rollout, self.target, self.proposing_draft, x, n_patches, self.config.k,
                               self.tracer)
        out = x.new_full((x.shape[0], n_patches * self.config.patch_len, x.shape[2]), float("nan"))
        active = torch.arange(x.shape[0], device=x.device)
        generators, ids = sample_generators(self.config.seed, sample_ids), list(sample_ids)
        self.counters.forecasts += x.shape[0]
        round_i = 0
        while len(active):
            k = self.proposer.choose_k(self.costs, self.tally.alpha_estimate)
            k_eff = (n_patches - 1 - rollout.n_emitted).clamp(max=k)
            self._round(rollout, k_eff, generators, ids, round_i, batch_idx)
            done = rollout.n_emitted >= n_patches
            if done.any():
                out[active[done]] = rollout.emitted(done, n_patches)
                rollout.retain(~done)
                active = active[~done]
                keep = (~done).tolist()
                generators = [g for g, kept in zip(generators, keep) if kept]
                ids = [i for i, kept in zip(ids, keep) if kept]
            round_i += 1
        return out[:, :horizon]

    @torch.no_grad()
    def sample_costs(self, x, horizon, repeats=1):
        """Adds `repeats` measurements of the step costs on batch x [B, L, C] to self.costs (created on
        the first call). Untimed: callers run it outside the timed region."""
        n_patches = math.ceil(horizon / self.config.patch_len)

        def build(with_draft):
            draft, k = (self.proposing_draft, self.config.k) if with_draft else (None, 0)
            return make_rollout(self.rollout, self.target, draft, x, n_patches, k, SectionTimer())

        if self.costs is None:
            self.costs = StepCosts(is_one_call(self.draft))
        measure_step_costs(build, self.config.k, x.device, self.costs, repeats)

    def _round(self, rollout, k_eff, generators, ids, round_i, batch_idx):
        proposals = self.proposer.propose(rollout, k_eff, generators)
        mu_p = rollout.verify(k_eff)
        k_eff_cpu = k_eff.cpu()
        with self.tracer.timed("accept_cpu"):
            log_ratio, log_u, accepted = self._test(proposals, mu_p, k_eff_cpu, generators)
            n_accepted = accepted.long().cumprod(1).sum(1)
        final = self._final_patches(mu_p, proposals, n_accepted, k_eff_cpu, generators)
        with self.tracer.timed("accept_cpu"):
            rollout.commit(final, n_accepted.to(k_eff.device))
            self._count(k_eff_cpu, n_accepted)
        if self.round_records is not None:
            self.round_records.append(RoundRecord(batch_idx, round_i, ids, k_eff, proposals, mu_p, final,
                                                  log_ratio, log_u, accepted, n_accepted))

    def _test(self, proposals, mu_p, k_eff, generators):
        """Log-ratios, log U and accept decisions [A, K] (CPU); untested slots never accept."""
        log_ratio = self.rule.log_ratio(proposals, mu_p[:, :proposals.x.shape[1]]).cpu()
        log_u = log_uniform_draws(generators, k_eff.tolist(), "cpu")
        return log_ratio, log_u, accept(log_u, log_ratio, self.config.log_bias)

    def _final_patches(self, mu_p, proposals, n_accepted, k_eff, generators):
        """The patch after the accepted proposals, [A, P, C]: the correction at the first rejection
        or the bonus μ_p,k_eff+1, as the rule makes it from the target's prediction there."""
        rows = torch.arange(len(n_accepted))
        mu_p_at = mu_p[rows.to(mu_p.device), n_accepted.to(mu_p.device)]
        with self.tracer.timed("target_sample") if self.rule.draws_final else nullcontext():
            final, fallbacks = self.rule.final(mu_p_at, proposals, n_accepted, k_eff, generators)
        self.counters.residual_fallbacks += fallbacks
        return final

    def _count(self, k_eff, n_accepted):
        attempted, accepted = int(torch.minimum(n_accepted + 1, k_eff).sum()), int(n_accepted.sum())
        self.tally.attempted += attempted
        self.tally.accepted += accepted
        c = self.counters
        for k in k_eff.tolist():
            c.verify_calls_by_k += [0] * (k + 1 - len(c.verify_calls_by_k))
            c.verify_calls_by_k[k] += 1
        c.target_calls += len(n_accepted)
        c.attempted += attempted
        c.accepted += accepted
        c.patches_emitted += int((n_accepted + 1).sum())


def check_one_call(target, draft, k):
    """The target predicts one patch per token; a one-call draft forecasts at least --spec_k patches."""
    if is_one_call(target) or target.patches_per_call != 1:
        raise ValueError("the target must predict one patch per token: a one-call model serves as a draft only")
    if is_one_call(draft) and k > draft.patches_per_call:
        raise ValueError(f"--spec_k {k} exceeds the {draft.patches_per_call} patches the one-call draft "
                         f"forecasts per call (--ttm_patches)")

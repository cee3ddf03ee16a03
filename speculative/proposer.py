"""The proposer: chooses K for a round and asks the draft for k_eff[a] patches per sample.

An autoregressive draft makes k_eff steps (one call each); a one-call draft (is_one_call,
e.g. TTM) makes ONE call per round that forecasts all k_eff patches, and proposal i is drawn from its
patch i exactly as from an autoregressive step (tolerance: the means; lossless: x ~ q with its
per-value variance), so acceptance is unchanged. draft_calls counts per-sample draft calls: k_eff
per round for an autoregressive draft, one per round for a one-call draft.

The acceptance rule (speculative/acceptance.py) makes each proposal from the draft's forecast: tolerance
proposes the draft's means; lossless draws x ~ q = N(μ_q, diag v_q) (a stochastic draft's variance) or
N(μ_q, σ²I). The draft rolls its own proposals forward through the
rollout (recomputed windows in `sliding`, its KV cache in `cached`).

Adaptive K (--spec_adaptive): before each round, the K in 0..--spec_k with the largest predicted
speedup (speculative/speed_model.py) for the acceptance measured so far by the decoder (warm-up
included, with one pseudo-acceptance so that it starts by proposing) and the step costs measured
so far; K = 0 is a plain target step, so the engine falls back to target-only decoding when
speculation does not pay. While the measured costs are impossible (c <= 0, v(k) < 1) it decodes with
K = --spec_k and counts the round in adaptive_fallback_rounds. Only the number of proposals changes,
never the acceptance rule, so lossless output keeps the target's distribution; but K then depends on
the other samples and on timings, so a sample's output is no longer independent of its batch.
"""
from dataclasses import dataclass

import torch

from models.output import Forecast

NAN = float("nan")


@dataclass
class Proposals:
    """Each [A, K, P, C] and NaN past k_eff[a]; var_q (float64) is None for a point draft."""
    x: torch.Tensor
    mu_q: torch.Tensor
    var_q: torch.Tensor = None


class DraftProposer:
    def __init__(self, config, rule, counters, tracer):
        """rule: the acceptance rule (speculative/acceptance.py), which draws each proposal."""
        self.config, self.rule, self.counters, self.tracer = config, rule, counters, tracer

    def choose_k(self, costs, alpha):
        if not self.config.adaptive:
            return self.config.k
        if costs.problems:  # impossible costs would choose K on noise: decode as with a fixed K
            self.counters.adaptive_fallback_rounds += 1
            return self.config.k
        return costs.best_k(alpha, self.config.k)

    def propose(self, rollout, k_eff, generators):
        k_max = int(k_eff.max())
        like = rollout.seq
        shape = (len(k_eff), k_max, rollout.out_len, like.shape[2])
        proposals = Proposals(like.new_full(shape, NAN), like.new_full(shape, NAN))
        if self.config.draft_stochastic:
            proposals.var_q = torch.full(shape, NAN, dtype=torch.float64, device=like.device)
        if k_max and rollout.one_call_draft:
            self._propose_from_one_call(rollout, k_eff, generators, proposals)
            return proposals
        for i in range(k_max):
            sub = (k_eff > i).nonzero().squeeze(1)
            with self.tracer.timed("draft"):
                self._add(rollout, proposals, sub, i, rollout.draft_next(sub), generators)
            self.counters.draft_calls += len(sub)
        return proposals

    def _propose_from_one_call(self, rollout, k_eff, generators, proposals):
        """ONE draft call forecasts every row's k_eff patches; proposal i is drawn from patch i,
        in the same order of random draws as an autoregressive draft."""
        sub = (k_eff > 0).nonzero().squeeze(1)
        with self.tracer.timed("draft"):
            block = rollout.draft_block(sub, int(k_eff.max()))
            for i in range(block.mean.shape[1]):
                rows = (k_eff[sub] > i).nonzero().squeeze(1)
                out = Forecast(*(None if t is None else t[rows, i] for t in block[:2]))
                self._add(rollout, proposals, sub[rows], i, out, generators)
        self.counters.draft_calls += len(sub)

    def _add(self, rollout, proposals, sub, i, out, generators):
        """Proposal i of the rows sub from the draft's Forecast [A', P, C] at that position."""
        var = self._variance(out.logvar)
        proposal = self.rule.propose(out.mean, var, [generators[a] for a in sub.tolist()])
        rollout.add_proposal(sub, proposal)
        proposals.x[sub, i], proposals.mu_q[sub, i] = proposal, out.mean
        if var is not None:
            proposals.var_q[sub, i] = var

    def _variance(self, logvar):
        """Per-value variance of q: exp(logvar) for a stochastic draft, None (σ²) otherwise."""
        if (logvar is not None) != self.config.draft_stochastic:
            raise ValueError("--draft_stochastic must match the draft: it is "
                             f"{self.config.draft_stochastic} but the draft returns "
                             f"{'a log-variance' if logvar is not None else 'a point forecast'}")
        return None if logvar is None else logvar.double().exp()

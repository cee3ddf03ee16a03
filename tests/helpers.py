"""Toy forecasters and checks shared by the tests of speculative decoding: PatchMap (a patch-to-patch map,
point or stochastic), CallSpy (counts calls), BlockMap (a one-call draft), the toy engine runs (decode,
target_only), the two-sample distribution check, and the references of the cached rollout's statistics."""
import copy
import math

import torch
from torch import nn

from layers.instance_norm import instance_stats
from models.output import Forecast
from speculative import RolloutOptions, SpecConfig, SpeculativeDecoder, TargetOnlyDecoder
from speculative.debug_rows import debug_rows

P, C, L = 4, 2, 12  # patch length, variables, window: N = 3 tokens, n = 8 values per patch
N_VALUES = P * C


class PatchMap(nn.Module):
    """Token n -> tanh(token_n @ W + window mean @ M) + offset, as [B, N·P, C].

    The window mean makes every prediction depend on the whole window, so a window cut at the
    wrong place changes the output. With `logvar` it is stochastic like a stochastic draft,
    logvar = logvar + 0.2·tanh(token_n @ V) (varies per value). Called like every forecaster."""
    patch_len = output_len = P
    patches_per_call = 1

    def __init__(self, seed, offset=0.0, logvar=None):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(N_VALUES, N_VALUES, generator=gen) * 1.5 / math.sqrt(N_VALUES)
        self.mix = torch.randn(C, N_VALUES, generator=gen) * 0.5
        self.var_weight = torch.randn(N_VALUES, N_VALUES, generator=gen) / math.sqrt(N_VALUES)
        self.offset, self.logvar = offset, logvar

    def forward(self, x, cache=None):
        batch, length, _ = x.shape
        tokens = x.reshape(batch, length // P, N_VALUES)
        mean = torch.tanh(tokens @ self.weight + (x.mean(1) @ self.mix)[:, None]) + self.offset
        if self.logvar is None:
            return Forecast(mean.reshape(batch, length, C))
        logvar = self.logvar + 0.2 * torch.tanh(tokens @ self.var_weight)
        return Forecast(mean.reshape(batch, length, C), logvar.reshape(batch, length, C))


class CallSpy(nn.Module):
    """Counts forward calls and the windows they processed."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls, self.windows = model, 0, 0
        self.patch_len, self.output_len = model.patch_len, model.output_len
        self.patches_per_call = model.patches_per_call
        self.one_call_forecaster = getattr(model, 'one_call_forecaster', False)

    def forward(self, x, cache=None):
        self.calls += 1
        self.windows += x.shape[0]
        return self.model(x)


class BlockMap(nn.Module):
    """A one-call draft: forecasts its k patches in ONE call by rolling `model` forward on its own means
    (a stochastic model's log-variances come along), so BlockMap(target) proposes exactly what the target
    would emit in the sliding rollout."""

    one_call_forecaster = True

    def __init__(self, model, k):
        super().__init__()
        self.model, self.patch_len, self.patches_per_call = model, model.patch_len, k
        self.output_len = k * model.patch_len

    def forward(self, x, cache=None):
        assert cache is None
        means, logvars, window = [], [], x
        for _ in range(self.patches_per_call):
            out = self.model(window)
            means.append(out.mean[:, -self.patch_len:])
            logvars.append(None if out.logvar is None else out.logvar[:, -self.patch_len:])
            window = torch.cat([window[:, self.patch_len:], means[-1]], dim=1)
        return Forecast(torch.cat(means, 1), None if logvars[0] is None else torch.cat(logvars, 1))


def contexts(batch, seed=0):
    return torch.randn(batch, L, C, generator=torch.Generator().manual_seed(seed))


def decode(target, draft, x, horizon, sample_ids=None, rows=None, costs=None, **config):
    """Speculative decoding after an untimed warm-up on x (which measures the step costs unless
    `costs` is given), with the counts of the warm-up dropped; `rows` receives the debug rows.
    Returns (output, counters, tracer)."""
    config = SpecConfig(**{"patch_len": P, "seed": 1, **config})
    sample_ids = list(range(len(x))) if sample_ids is None else sample_ids
    decoder = SpeculativeDecoder(target, draft, config)
    decoder.costs = costs
    decoder.generate(x, horizon, sample_ids)
    decoder.reset_counts(trace=True)
    for spy in (target, draft):
        if isinstance(spy, CallSpy):
            spy.calls = spy.windows = 0
    decoder.round_records = None if rows is None else []
    out = decoder.generate(x, horizon, sample_ids)
    if rows is not None:
        rows += [row for record in decoder.round_records for row in debug_rows(record, config)]
    return out, decoder.counters, decoder.tracer


def target_only(model, x, horizon, sigma=None, sample_ids=None, seed=2021, rollout=RolloutOptions()):
    sample_ids = list(range(len(x))) if sample_ids is None else sample_ids
    return TargetOnlyDecoder(model, rollout, sample_sigma=sigma, seed=seed).generate(x, horizon, sample_ids)


def same_distribution_failures(a, b, z_max=4.5):
    """Two-sample checks of draws a, b [N, H, C]: per-value mean and variance z-scores (variance
    SE from the fourth moment), the z-score of the per-draw average, and per-value KS distances
    (Bonferroni, level ~1e-3). Returns the failed checks."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    n_a, n_b, n_coords = len(a), len(b), a.shape[1]

    def z_mean(u, v):
        return (u.mean(0) - v.mean(0)) / (u.var(0) / len(u) + v.var(0) / len(v)).sqrt()

    def var_se2(u):
        centred = u - u.mean(0)
        return ((centred**4).mean(0) - u.var(0) ** 2) / len(u)

    failures = []
    if z_mean(a, b).abs().max() > z_max:
        failures.append("per-value mean")
    if ((a.var(0) - b.var(0)) / (var_se2(a) + var_se2(b)).sqrt()).abs().max() > z_max:
        failures.append("per-value variance")
    if z_mean(a.mean(1, keepdim=True), b.mean(1, keepdim=True)).abs().max() > z_max:
        failures.append("average over values")
    pooled = torch.cat([a, b]).sort(0).values
    cdf_a = torch.searchsorted(a.sort(0).values.T.contiguous(), pooled.T.contiguous(),
                               right=True) / n_a
    cdf_b = torch.searchsorted(b.sort(0).values.T.contiguous(), pooled.T.contiguous(),
                               right=True) / n_b
    ks_critical = math.sqrt(-0.5 * math.log(1e-3 / n_coords / 2)) * math.sqrt(
        (n_a + n_b) / (n_a * n_b))
    if (cdf_a - cdf_b).abs().max() > ks_critical:
        failures.append("KS")
    return failures


def per_point(stat, n_points):
    """Statistics [B, S, C] (one set, or one per step) repeated for each of n_points points: [B, n_points, C]."""
    return stat.repeat_interleave(n_points // stat.shape[1], dim=1)


@torch.no_grad()
def frozen_stats_forward(model, x, stats):
    """(mean, logvar) of a full forward over x, without any cache, normalised by hand with `stats` (one set
    [B, 1, C], or one per step [B, N, C]): a copy of the model with instance norm off is fed the normalised
    series, and each step's output is denormalised with its step's statistics."""
    twin = copy.deepcopy(model)
    twin.use_norm = False
    mean, std = (per_point(s, x.shape[1]) for s in stats)
    out = twin((x - mean) / std)
    logvar = None if out.logvar is None else out.logvar + 2 * torch.log(std)
    return out.mean * std + mean, logvar


def token_stats(grown, context_len, stats='trailing', patch_len=P):
    """Each token's statistics [B, N, C] in the cached rollout, from slices by hand: the context tokens
    the context window's; a later token, those of the L points ending with it (trailing) or the context's."""
    context = instance_stats(grown[:, :context_len])
    per_token = [context] * (context_len // patch_len)
    for end in range(context_len + patch_len, grown.shape[1] + 1, patch_len):
        per_token.append(instance_stats(grown[:, end - context_len:end]) if stats == 'trailing' else context)
    return tuple(torch.cat(s, 1) for s in zip(*per_token))



"""KV cache (layers/kv_cache.py) and the `cached` rollout (speculative/cached.py) on tiny models.

References are independent of the cache: a full forward (no cache) over the grown context, every
token normalised by hand with its statistics (the initial window's, frozen, or those of the L points
ending with it, trailing), or each sample run alone.
"""
import copy
import math

import pytest
import torch

from conftest import make_args
from layers.instance_norm import instance_stats, rollout_stats, trailing_stats
from layers.kv_cache import KVCache
from models import model_from_flags
from speculative import RolloutOptions, SpecConfig, SpeculativeDecoder, TargetOnlyDecoder
from test_spec_decoding import same_distribution_failures

P, C = 4, 3
TINY = dict(d_model=16, n_heads=2, d_ff=24, input_token_len=P, output_token_len=P)
FAMILIES = {'timer_xl': ('timer_xl', {}), 'draft_stochastic': ('timer_xl_draft', {'draft_stochastic': True}),
            'timer': ('timer', {})}


def tiny(name='timer_xl', seed=0, **flags):
    torch.manual_seed(seed)
    return model_from_flags(name, make_args(model=name, **{**TINY, **flags})).eval()


def family(key, **flags):
    name, extra = FAMILIES[key]
    return tiny(name, **extra, **flags)


def series(batch=2, n_patches=9, seed=1):
    return torch.randn(batch, n_patches * P, C, generator=torch.Generator().manual_seed(seed))


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


@torch.no_grad()
@pytest.mark.parametrize('e_layers', [1, 3])
@pytest.mark.parametrize('key', FAMILIES)
def test_cached_forward_equals_full_forward_with_frozen_stats(key, e_layers):
    model, x, context = family(key, e_layers=e_layers, use_norm=True), series(), 4
    stats = instance_stats(x[:, :context * P])
    cache = KVCache(model.n_layers)
    pieces, start = [model(x[:, :context * P], cache)], context
    for n_new in (1, 2, 1, 1):  # several steps in a row, of different widths
        pieces.append(model(x[:, start * P:(start + n_new) * P], cache, stats))
        start += n_new
    mean, logvar = frozen_stats_forward(model, x, stats)
    torch.testing.assert_close(torch.cat([p.mean for p in pieces], 1), mean, rtol=0, atol=1e-5)
    if logvar is not None:
        torch.testing.assert_close(torch.cat([p.logvar for p in pieces], 1), logvar, rtol=0, atol=1e-5)
    assert cache.lengths.tolist() == [9, 9] and all(p.cache is cache for p in pieces)


def hand_stats(window):
    """(mean, std) of every variable of window [L, C], in float64 numbers: the population variance + 1e-5."""
    mean = [sum(column) / len(column) for column in zip(*window)]
    var = [sum((v - m) ** 2 for v in column) / len(column) for column, m in zip(zip(*window), mean)]
    return mean, [math.sqrt(v + 1e-5) for v in var]


def test_trailing_stats_are_those_of_the_points_ending_with_each_step():
    series_ = [[float(t * t % 7), float(3 * t - 1)] for t in range(10)] + [[2.0, -4.0], [0.5, 9.0]]
    x = torch.tensor([series_, [[-v for v in row] for row in series_]])
    ends = torch.tensor([[4, 7, 12], [6, 6, 9]])
    mean, std = trailing_stats(x, ends, 4)
    assert mean.shape == std.shape == (2, 3, 2)
    for b in range(2):
        for w, end in enumerate(ends[b].tolist()):
            expected_mean, expected_std = hand_stats(x[b, end - 4:end].tolist())
            assert mean[b, w].tolist() == pytest.approx(expected_mean, abs=1e-5)
            assert std[b, w].tolist() == pytest.approx(expected_std, abs=1e-5)


@torch.no_grad()
@pytest.mark.parametrize('n_vars', [1, 7])
@pytest.mark.parametrize('e_layers', [1, 3])
@pytest.mark.parametrize('key', FAMILIES)
def test_k_steps_with_their_own_stats_in_one_call_equal_k_single_steps(key, e_layers, n_vars):
    """Per-step statistics: one call over four new steps equals four calls of one step each."""
    model = family(key, e_layers=e_layers, use_norm=True)
    x = torch.randn(2, 8 * P, n_vars, generator=torch.Generator().manual_seed(3)) * 3 + 1
    stats = trailing_stats(x, torch.arange(5, 9)[None].expand(2, -1) * P, 4 * P)
    at_once, one_by_one = KVCache(model.n_layers), KVCache(model.n_layers)
    model(x[:, :4 * P], at_once)
    model(x[:, :4 * P], one_by_one)
    joint = model(x[:, 4 * P:], at_once, stats)
    single = [model(x[:, n * P:(n + 1) * P], one_by_one, tuple(s[:, n - 4:n - 3] for s in stats)) for n in range(4, 8)]
    torch.testing.assert_close(joint.mean, torch.cat([o.mean for o in single], 1), rtol=0, atol=1e-5)
    if joint.logvar is not None:
        torch.testing.assert_close(joint.logvar, torch.cat([o.logvar for o in single], 1), rtol=0, atol=1e-5)


def test_steps_on_top_of_a_cache_need_their_statistics():
    model, x = tiny(use_norm=True), series()
    cache = KVCache(model.n_layers)
    model(x[:, :4 * P], cache)
    with pytest.raises(ValueError, match='normalisation statistics'):
        model(x[:, 4 * P:5 * P], cache)


@torch.no_grad()
@pytest.mark.parametrize('key', FAMILIES)
def test_crop_then_refeed_equals_never_having_fed(key):
    model, x, other = family(key, e_layers=2), series(), series(seed=5)
    clean = KVCache(model.n_layers)
    model(x[:, :5 * P], clean)
    expected = model(x[:, 5 * P:7 * P], clean).mean
    cache = KVCache(model.n_layers)
    model(x[:, :5 * P], cache)
    model(other[:, :3 * P], cache)   # three wrong steps, then forgotten
    cache.crop([5, 5])
    torch.testing.assert_close(model(x[:, 5 * P:7 * P], cache).mean, expected, rtol=0, atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize('key', FAMILIES)
def test_ragged_batch_equals_each_sample_alone(key):
    """Samples hold 3, 6 and 4 steps (per-sample offsets and crops), then get steps they never had: one
    batched call of two steps equals each sample's own cache fed alone."""
    model, x, other = family(key, e_layers=2, use_norm=True), series(batch=3), series(batch=3, seed=7)
    held, stats = [3, 6, 4], instance_stats(x[:, :3 * P])
    cache = KVCache(model.n_layers)
    model(x[:, :6 * P], cache, stats)
    cache.crop(held)
    batched = model(other[:, :2 * P], cache, stats)
    for i, n in enumerate(held):
        alone = KVCache(model.n_layers)
        row_stats = tuple(s[i:i + 1] for s in stats)
        model(x[i:i + 1, :n * P], alone, row_stats)
        torch.testing.assert_close(batched.mean[i:i + 1], model(other[i:i + 1, :2 * P], alone, row_stats).mean,
                                   rtol=0, atol=1e-6)


@torch.no_grad()
def test_a_finished_sample_costs_no_more_rows():
    """Samples accept different numbers of proposals, so they finish at different rounds: the rows
    of the target's calls never grow, and the last calls have fewer rows than the batch. Selecting
    rows of a cache keeps only those rows."""
    target, draft = tiny(e_layers=1), tiny('timer_xl_draft', seed=3, e_layers=1)
    rows = []
    target.embedding.register_forward_pre_hook(lambda module, inputs: rows.append(inputs[0].shape[0]))
    decoder = SpeculativeDecoder(target, draft, SpecConfig(k=3, sigma=1.0, patch_len=P), RolloutOptions('cached'))
    x = series(batch=6, n_patches=4)
    decoder.generate(x, 9 * P, list(range(6)))
    rows.clear()
    decoder.generate(x, 9 * P, list(range(6)))
    assert rows[:2] == [6, 6] and rows == sorted(rows, reverse=True) and rows[-1] < 6  # prefills, then rounds
    cache = KVCache(1)
    target(x, cache)
    cache.select(torch.tensor([2, 0]))
    assert cache.keys[0].shape[0] == 2 and cache.lengths.tolist() == [4, 4]


@torch.no_grad()
def test_cache_window_limits_attention_to_recent_steps():
    """One layer with --cache_max_tokens 1: each query sees only its own time step, so the newest
    prediction ignores every earlier patch; without a window it does not."""
    model, x = tiny(e_layers=1), series()
    changed = x.clone()
    changed[:, :6 * P] += 1.0
    for window, ignores_past in ((1, True), (0, False)):
        outs = []
        for series_ in (x, changed):
            cache = KVCache(model.n_layers, window)
            model(series_[:, :6 * P], cache)
            outs.append(model(series_[:, 6 * P:7 * P], cache).mean)
        assert torch.allclose(outs[0], outs[1], atol=1e-6) == ignores_past


STATS = ('trailing', 'frozen')


def decode(target, draft, x, horizon, stats='trailing', **config):
    decoder = SpeculativeDecoder(target, draft, SpecConfig(**{'patch_len': P, 'seed': 1, **config}),
                                 RolloutOptions('cached', cache_stats=stats))
    out = decoder.generate(x, horizon, list(range(len(x))))
    return out, decoder.counters


def target_only_cached(target, x, horizon, stats='trailing', sigma=None, ids=None, seed=2021):
    ids = list(range(len(x))) if ids is None else ids
    decoder = TargetOnlyDecoder(target, RolloutOptions('cached', cache_stats=stats), sample_sigma=sigma, seed=seed)
    return decoder.generate(x, horizon, ids)


def token_stats(grown, context_len, stats='trailing', patch_len=P):
    """Each token's statistics [B, N, C] in the cached rollout, from slices by hand: the context tokens
    the context window's; a later token, those of the L points ending with it (trailing) or the context's."""
    context = instance_stats(grown[:, :context_len])
    per_token = [context] * (context_len // patch_len)
    for end in range(context_len + patch_len, grown.shape[1] + 1, patch_len):
        per_token.append(instance_stats(grown[:, end - context_len:end]) if stats == 'trailing' else context)
    return tuple(torch.cat(s, 1) for s in zip(*per_token))


@torch.no_grad()
@pytest.mark.parametrize('stats', STATS)
def test_target_only_cached_equals_growing_full_forwards(stats):
    """Target-only `cached`: step j's patch is the last-token prediction of a full forward over the
    context + the j patches emitted so far, every token normalised by hand with its statistics."""
    target, x, horizon = tiny(e_layers=2, use_norm=True), series(n_patches=4) * 2 + 1, 6 * P
    out = target_only_cached(target, x, horizon, stats)
    grown = x
    for j in range(horizon // P):
        patch = frozen_stats_forward(target, grown, token_stats(grown, x.shape[1], stats))[0][:, -P:]
        torch.testing.assert_close(out[:, j * P:(j + 1) * P], patch, rtol=0, atol=1e-5)
        grown = torch.cat([grown, patch], 1)


def test_trailing_and_frozen_differ_after_the_first_patch():
    target, x = tiny(e_layers=2, use_norm=True), series(n_patches=4) * 2 + 1
    trailing, frozen = (target_only_cached(target, x, 3 * P, stats) for stats in STATS)
    torch.testing.assert_close(trailing[:, :P], frozen[:, :P], rtol=0, atol=0)
    assert (trailing[:, P:] - frozen[:, P:]).abs().max() > 1e-3


@torch.no_grad()
@pytest.mark.parametrize('stats', STATS)
@pytest.mark.parametrize('k', [1, 2, 3, 4, 'adaptive'])
@pytest.mark.parametrize('draft_key', ['draft_stochastic', 'timer'])
def test_tiny_sigma_equals_target_only_cached(draft_key, k, stats):
    target, draft, x, horizon = tiny(e_layers=2, use_norm=True), family(draft_key, seed=4, use_norm=True), series(5, 4), 9 * P
    adaptive = dict(k=4, adaptive=True) if k == 'adaptive' else dict(k=k)
    out, counters = decode(target, draft, x, horizon, stats, sigma=1e-6, **adaptive,
                           draft_stochastic=draft_key == 'draft_stochastic')
    torch.testing.assert_close(out, target_only_cached(target, x, horizon, stats), rtol=0, atol=1e-5)
    assert counters.accepted == 0 < counters.attempted


@torch.no_grad()
@pytest.mark.parametrize('stats', STATS)
def test_draft_identical_to_target_is_always_accepted_cached(stats):
    target, x, horizon, k = tiny(e_layers=2, use_norm=True), series(4, 4), 10 * P, 3
    out, counters = decode(target, tiny(e_layers=2, use_norm=True), x, horizon, stats, k=k, sigma=0.5)
    torch.testing.assert_close(out, target_only_cached(target, x, horizon, stats), rtol=0, atol=1e-5)
    assert counters.accepted == counters.attempted > 0
    assert counters.target_calls == 4 * math.ceil(10 / (k + 1))


@torch.no_grad()
@pytest.mark.parametrize('stats', STATS)
def test_lossless_cached_is_distributed_as_target_only_cached_sampling(stats):
    """The draft is the target with every mean shifted by 0.2 and variance σ², so that proposals are
    accepted about half of the time (2Φ(−0.2·√12 / 2σ) = 0.49). Instance norm on: with trailing
    statistics every proposal changes the statistics of the steps after it."""
    sigma, n_draws, horizon = 0.5, 3000, 3 * P
    target = tiny(e_layers=1, use_norm=True)
    draft = tiny('timer_xl_draft', e_layers=1, use_norm=True, draft_stochastic=True,
                 **{f'draft_scale_{name}': 1.0 for name in ('d_model', 'n_heads', 'd_ff', 'e_layers')})
    state = {name.replace('head.', 'head_mean.'): value for name, value in target.state_dict().items()}
    draft.load_state_dict({**draft.state_dict(), **state})
    draft.head_mean.bias += 0.2
    draft.head_logvar.weight.zero_()
    draft.head_logvar.bias.fill_(math.log(sigma**2))
    x = series(1, 3).expand(n_draws, -1, -1)
    speculative, counters = decode(target, draft, x, horizon, stats, k=2, sigma=sigma, accept_mode='lossless',
                                   draft_stochastic=True)
    assert 0.3 < counters.acceptance_pct / 100 < 0.7
    sampled = target_only_cached(target, x, horizon, stats, sigma, list(range(n_draws, 2 * n_draws)), seed=2)
    assert same_distribution_failures(speculative, sampled) == []
    shifted = target_only_cached(target, x, horizon, stats, sigma, list(range(n_draws)), seed=3) + 0.05 * sigma
    assert "average over values" in same_distribution_failures(shifted, sampled)


@torch.no_grad()
@pytest.mark.parametrize('key', FAMILIES)
def test_host_reads_per_cached_call_do_not_grow_with_depth(key, monkeypatch):
    """Every read of a device value on the host (int(), .item(), .tolist(), bool()) is a synchronisation on a
    GPU: a cached call makes the same few however many layers the model has, none per layer."""
    reads = []
    for method in ('__int__', 'item', 'tolist', '__bool__'):
        original = getattr(torch.Tensor, method)
        monkeypatch.setattr(torch.Tensor, method, lambda self, *a, _m=original, _n=method: (reads.append(_n), _m(self, *a))[1])

    def reads_of_one_step(e_layers):
        model, x = family(key, e_layers=e_layers), series()
        cache = KVCache(model.n_layers)
        model(x[:, :4 * P], cache)
        cache.crop(torch.tensor([2, 4]))
        reads.clear()
        model(x[:, 4 * P:6 * P], cache)
        return len(reads)

    assert reads_of_one_step(1) == reads_of_one_step(4) <= 1


@torch.no_grad()
@pytest.mark.parametrize('key', FAMILIES)
def test_masks_and_rotary_angles_are_built_once_per_call(key, monkeypatch):
    import layers.attention as attention
    built = []
    blocked_mask, grid, angles = attention.blocked_mask, attention.TokenLabels.grid, attention.RotaryEmbedding.angles
    monkeypatch.setattr(attention, 'blocked_mask', lambda *a, **k: (built.append('mask'), blocked_mask(*a, **k))[1])
    monkeypatch.setattr(attention.TokenLabels, 'grid', staticmethod(lambda *a: (built.append('labels'), grid(*a))[1]))
    monkeypatch.setattr(attention.RotaryEmbedding, 'angles', lambda *a: (built.append('angles'), angles(*a))[1])

    def built_in_one_step(e_layers):
        model, x = family(key, e_layers=e_layers), series()
        cache = KVCache(model.n_layers)
        model(x[:, :4 * P], cache)
        built.clear()
        model(x[:, 4 * P:5 * P], cache)
        return sorted(built)

    assert built_in_one_step(1) == built_in_one_step(4)


@torch.no_grad()
def test_draft_steps_compute_only_the_rows_that_need_a_proposal():
    """Rows that accepted different numbers of proposals need different numbers of proposals near the end
    of the horizon: a draft step computes exactly the rows that propose (draft_calls counts those), and
    the forecasts equal those of a batch where every row is alone."""
    target, draft = tiny(e_layers=1, use_norm=True), tiny('timer_xl_draft', seed=3, e_layers=1, use_norm=True)
    rows = []
    draft.embedding.register_forward_pre_hook(lambda module, inputs: rows.append(inputs[0].shape[0]))
    x = series(batch=6, n_patches=4) * 2
    decoder = SpeculativeDecoder(target, draft, SpecConfig(k=3, sigma=1.0, patch_len=P, seed=1), RolloutOptions('cached'))
    decoder.generate(x, 9 * P, list(range(6)))  # warm-up: measures the step costs
    decoder.reset_counts()
    rows.clear()
    out = decoder.generate(x, 9 * P, list(range(6)))
    assert sum(rows[1:]) == decoder.counters.draft_calls and min(rows[1:]) < max(rows[1:])  # rows[0]: the prefill
    for i in range(6):
        alone = SpeculativeDecoder(target, draft, SpecConfig(k=3, sigma=1.0, patch_len=P, seed=1), RolloutOptions('cached'))
        torch.testing.assert_close(alone.generate(x[i:i + 1], 9 * P, [i]), out[i:i + 1], rtol=0, atol=1e-5)


def test_rollout_stats_are_each_tokens_statistics_in_the_cached_rollout():
    grown = series(batch=3, n_patches=9) * 3 + 2
    for stat, by_hand in zip(rollout_stats(grown, 4 * P, P), token_stats(grown, 4 * P)):
        assert stat.shape == (3, 9, C)
        torch.testing.assert_close(stat, by_hand, rtol=0, atol=1e-6)

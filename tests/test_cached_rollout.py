"""KV cache (layers/kv_cache.py) and the `cached` rollout (speculative/cached.py) on tiny models.

References are independent of the cache: a full forward (no cache) over the grown context, every
token normalised by hand with its statistics (the initial window's, frozen, or those of the L points
ending with it, trailing), or each sample run alone.
"""
import math
from functools import partial

import pytest
import torch

from conftest import tiny_model
from helpers import frozen_stats_forward, target_only, token_stats
from layers.instance_norm import instance_stats, rollout_stats, trailing_stats
from layers.kv_cache import KVCache
from speculative import RolloutOptions, SpecConfig, SpeculativeDecoder

P, C = 4, 3
TINY = dict(d_model=16, n_heads=2, d_ff=24, input_token_len=P, output_token_len=P)
FAMILIES = {'timer_xl': ('timer_xl', {}), 'draft_stochastic': ('timer_xl_draft', {'draft_stochastic': True}),
            'timer': ('timer', {})}


tiny = partial(tiny_model, **TINY)


def family(key, **flags):
    name, extra = FAMILIES[key]
    return tiny(name, **extra, **flags)


def series(batch=2, n_patches=9, seed=1):
    return torch.randn(batch, n_patches * P, C, generator=torch.Generator().manual_seed(seed))


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


@torch.no_grad()
@pytest.mark.parametrize('stats', STATS)
def test_target_only_cached_equals_growing_full_forwards(stats):
    """Target-only `cached`: step j's patch is the last-token prediction of a full forward over the
    context + the j patches emitted so far, every token normalised by hand with its statistics."""
    target, x, horizon = tiny(e_layers=2, use_norm=True), series(n_patches=4) * 2 + 1, 6 * P
    out = target_only(target, x, horizon, rollout=RolloutOptions('cached', cache_stats=stats))
    grown = x
    for j in range(horizon // P):
        patch = frozen_stats_forward(target, grown, token_stats(grown, x.shape[1], stats))[0][:, -P:]
        torch.testing.assert_close(out[:, j * P:(j + 1) * P], patch, rtol=0, atol=1e-5)
        grown = torch.cat([grown, patch], 1)


def test_trailing_and_frozen_differ_after_the_first_patch():
    target, x = tiny(e_layers=2, use_norm=True), series(n_patches=4) * 2 + 1
    trailing, frozen = (target_only(target, x, 3 * P, rollout=RolloutOptions('cached', cache_stats=stats))
                         for stats in STATS)
    torch.testing.assert_close(trailing[:, :P], frozen[:, :P], rtol=0, atol=0)
    assert (trailing[:, P:] - frozen[:, P:]).abs().max() > 1e-3


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
    of the horizon: a draft step computes exactly the rows that propose (draft_calls counts those)."""
    target, draft = tiny(e_layers=1, use_norm=True), tiny('timer_xl_draft', seed=3, e_layers=1, use_norm=True)
    rows = []
    draft.embedding.register_forward_pre_hook(lambda module, inputs: rows.append(inputs[0].shape[0]))
    x = series(batch=6, n_patches=4) * 2
    decoder = SpeculativeDecoder(target, draft, SpecConfig(k=3, sigma=1.0, patch_len=P, seed=1), RolloutOptions('cached'))
    decoder.generate(x, 9 * P, list(range(6)))  # warm-up: measures the step costs
    decoder.reset_counts()
    rows.clear()
    decoder.generate(x, 9 * P, list(range(6)))
    assert sum(rows[1:]) == decoder.counters.draft_calls and min(rows[1:]) < max(rows[1:])  # rows[0]: the prefill


def test_rollout_stats_are_each_tokens_statistics_in_the_cached_rollout():
    grown = series(batch=3, n_patches=9) * 3 + 2
    for stat, by_hand in zip(rollout_stats(grown, 4 * P, P), token_stats(grown, 4 * P)):
        assert stat.shape == (3, 9, C)
        torch.testing.assert_close(stat, by_hand, rtol=0, atol=1e-6)

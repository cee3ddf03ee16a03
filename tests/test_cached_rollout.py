"""KV cache (layers/kv_cache.py) and the `cached` rollout (speculative/cached.py) on tiny models.

References are independent of the cache: a full forward (no cache) over the grown context,
normalised by hand with the frozen statistics of the initial window, or each sample run alone.
"""
import copy
import math

import pytest
import torch

from conftest import make_args
from layers.instance_norm import denormalize, instance_stats, normalize
from layers.kv_cache import KVCache
from models import build_model
from speculative import SpecConfig, SpeculativeDecoder, TargetOnlyDecoder
from test_spec_decoding import same_distribution_failures

P, C = 4, 3
TINY = dict(d_model=16, n_heads=2, d_ff=24, input_token_len=P, output_token_len=P)
FAMILIES = {'timer_xl': ('timer_xl', {}), 'draft_stochastic': ('timer_xl_draft', {'draft_stochastic': True}),
            'timer': ('timer', {})}


def tiny(name='timer_xl', seed=0, **flags):
    torch.manual_seed(seed)
    return build_model(name, make_args(model=name, **{**TINY, **flags})).eval()


def family(key, **flags):
    name, extra = FAMILIES[key]
    return tiny(name, **extra, **flags)


def series(batch=2, n_patches=9, seed=1):
    return torch.randn(batch, n_patches * P, C, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def frozen_stats_forward(model, x, stats):
    """(mean, logvar) of a full forward over x, without any cache, normalised by hand with `stats`:
    a copy of the model with instance norm off is fed the normalised series."""
    twin = copy.deepcopy(model)
    twin.use_norm = False
    out = twin(normalize(x, stats))
    logvar = None if out.logvar is None else out.logvar + 2 * torch.log(stats[1])
    return denormalize(out.mean, stats), logvar


@torch.no_grad()
@pytest.mark.parametrize('e_layers', [1, 3])
@pytest.mark.parametrize('key', FAMILIES)
def test_cached_forward_equals_full_forward_with_frozen_stats(key, e_layers):
    model, x, context = family(key, e_layers=e_layers, use_norm=True), series(), 4
    cache = KVCache(model.n_layers)
    pieces, start = [model(x[:, :context * P], cache)], context
    for n_new in (1, 2, 1, 1):  # several steps in a row, of different widths
        pieces.append(model(x[:, start * P:(start + n_new) * P], cache))
        start += n_new
    mean, logvar = frozen_stats_forward(model, x, instance_stats(x[:, :context * P]))
    torch.testing.assert_close(torch.cat([p.mean for p in pieces], 1), mean, rtol=0, atol=1e-5)
    if logvar is not None:
        torch.testing.assert_close(torch.cat([p.logvar for p in pieces], 1), logvar, rtol=0, atol=1e-5)
    assert cache.lengths.tolist() == [9, 9] and all(p.cache is cache for p in pieces)


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
    """Samples hold 3, 6 and 4 steps (per-sample offsets and crops); one batched step equals each
    sample's own cache fed alone."""
    model, x = family(key, e_layers=2, use_norm=True), series(batch=3)
    held = [3, 6, 4]
    cache = KVCache(model.n_layers)
    model(x[:, :6 * P], cache)
    cache.crop(held)
    new = torch.stack([x[i, n * P:(n + 1) * P] for i, n in enumerate(held)])
    batched = model(new, cache)
    for i, n in enumerate(held):
        alone = KVCache(model.n_layers)
        model(x[i:i + 1, :6 * P], alone)      # same frozen statistics: the same first 6 steps
        alone.crop([n])
        torch.testing.assert_close(batched.mean[i:i + 1], model(new[i:i + 1], alone).mean, rtol=0, atol=1e-6)


@torch.no_grad()
def test_a_finished_sample_costs_no_more_rows():
    """Samples accept different numbers of proposals, so they finish at different rounds: the rows
    of the target's calls never grow, and the last calls have fewer rows than the batch. Selecting
    rows of a cache keeps only those rows."""
    target, draft = tiny(e_layers=1), tiny('timer_xl_draft', seed=3, e_layers=1)
    rows = []
    target.embedding.register_forward_pre_hook(lambda module, inputs: rows.append(inputs[0].shape[0]))
    decoder = SpeculativeDecoder(target, draft, SpecConfig(k=3, sigma=1.0, patch_len=P), 'cached')
    x = series(batch=6, n_patches=4)
    decoder.generate(x, 9 * P, list(range(6)))
    rows.clear()
    decoder.generate(x, 9 * P, list(range(6)))
    assert rows[:2] == [6, 6] and rows == sorted(rows, reverse=True) and rows[-1] < 6  # prefills, then rounds
    cache = KVCache(1)
    target(x, cache)
    cache.select(torch.tensor([2, 0]))
    assert cache.keys[0].shape[0] == 2 and cache.lengths.tolist() == [4, 4]
    assert cache.norm_stats is None


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


def decode(target, draft, x, horizon, **config):
    decoder = SpeculativeDecoder(target, draft, SpecConfig(**{'patch_len': P, 'seed': 1, **config}), 'cached')
    out = decoder.generate(x, horizon, list(range(len(x))))
    return out, decoder.counters


def target_only_cached(target, x, horizon, sigma=None, ids=None, seed=2021):
    ids = list(range(len(x))) if ids is None else ids
    return TargetOnlyDecoder(target, 'cached', sample_sigma=sigma, seed=seed).generate(x, horizon, ids)


@torch.no_grad()
def test_target_only_cached_equals_growing_full_forwards():
    """Target-only `cached`: step j's patch is the last-token prediction of a full forward over the
    context + the j patches emitted so far, normalised with the initial window's statistics."""
    target, x, horizon = tiny(e_layers=2, use_norm=True), series(n_patches=4), 5 * P
    out = target_only_cached(target, x, horizon)
    stats, grown = instance_stats(x), x
    for j in range(horizon // P):
        patch = frozen_stats_forward(target, grown, stats)[0][:, -P:]
        torch.testing.assert_close(out[:, j * P:(j + 1) * P], patch, rtol=0, atol=1e-5)
        grown = torch.cat([grown, patch], 1)


@torch.no_grad()
@pytest.mark.parametrize('draft_key', ['draft_stochastic', 'timer'])
def test_tiny_sigma_equals_target_only_cached(draft_key):
    target, draft, x, horizon = tiny(e_layers=2, use_norm=True), family(draft_key, seed=4, use_norm=True), series(5, 4), 9 * P
    out, counters = decode(target, draft, x, horizon, k=3, sigma=1e-6, draft_stochastic=draft_key == 'draft_stochastic')
    torch.testing.assert_close(out, target_only_cached(target, x, horizon), rtol=0, atol=1e-5)
    assert counters.accepted == 0 < counters.attempted


@torch.no_grad()
def test_draft_identical_to_target_is_always_accepted_cached():
    target, x, horizon, k = tiny(e_layers=2, use_norm=True), series(4, 4), 10 * P, 3
    out, counters = decode(target, tiny(e_layers=2, use_norm=True), x, horizon, k=k, sigma=0.5)
    torch.testing.assert_close(out, target_only_cached(target, x, horizon), rtol=0, atol=1e-5)
    assert counters.accepted == counters.attempted > 0
    assert counters.target_calls == 4 * math.ceil(10 / (k + 1))


@torch.no_grad()
def test_lossless_cached_is_distributed_as_target_only_cached_sampling():
    """The draft is the target with every mean shifted by 0.2 and variance σ², so that proposals are
    accepted about half of the time (2Φ(−0.2·√12 / 2σ) = 0.49)."""
    sigma, n_draws, horizon = 0.5, 3000, 3 * P
    target = tiny(e_layers=1)
    draft = tiny('timer_xl_draft', e_layers=1, draft_stochastic=True, **{f'draft_scale_{name}': 1.0 for name in
                                                                         ('d_model', 'n_heads', 'd_ff', 'e_layers')})
    state = {name.replace('head.', 'head_mean.'): value for name, value in target.state_dict().items()}
    draft.load_state_dict({**draft.state_dict(), **state})
    draft.head_mean.bias += 0.2
    draft.head_logvar.weight.zero_()
    draft.head_logvar.bias.fill_(math.log(sigma**2))
    x = series(1, 3).expand(n_draws, -1, -1)
    speculative, counters = decode(target, draft, x, horizon, k=2, sigma=sigma, accept_mode='lossless',
                                   draft_stochastic=True)
    assert 0.3 < counters.acceptance_pct / 100 < 0.7
    sampled = target_only_cached(target, x, horizon, sigma, list(range(n_draws, 2 * n_draws)), seed=2)
    assert same_distribution_failures(speculative, sampled) == []
    shifted = target_only_cached(target, x, horizon, sigma, list(range(n_draws)), seed=3) + 0.05 * sigma
    assert "average over values" in same_distribution_failures(shifted, sampled)

"""Model families beyond Timer-XL: the Timer draft, TTM as a one-call forecaster and draft, one-call drafts in
the engine, and a new family as one file.

Models are tiny; the ETTh1 tests use two-token windows (P = 96, L = 192) and a handful of batches.
"""
import sys
from functools import partial

import pytest
import torch

import run
from cli.parser import parse_flags
from cli.paths import checkpoint_path, make_setting
from cli.validate import validate
from conftest import ETT_ROOT, cli_args, make_args, save_tiny, tiny_model
from data_provider.data_factory import get_loader
from exp.exp_distill import ExpDistill
from exp.exp_forecast import ExpForecast
from helpers import BlockMap, CallSpy, PatchMap, contexts, decode
from layers.kv_cache import KVCache
from models import model_from_flags
from speculative import TargetOnlyDecoder
from speculative.engine import check_one_call
from utils.checkpoint import save_checkpoint
from utils.failures import UsageError
from utils.records import SUMMARY_FILE, parse_summary
from utils.timing import ComponentTimer


# ---- TTM ---------------------------------------------------------------------------------------------

TTM_FLAGS = dict(seq_len=672, input_token_len=96, ttm_patches=4, hidden_dim=64, layers=2, AP_levels=2, factor=2,
                 mode='common_channel', d_mode='mix_channel', n_vars=7)


ttm = partial(tiny_model, 'ttm', **TTM_FLAGS)


def gated_mlp_params(n, factor=2):
    """LayerNorm 2n + Linear(n, fn) + Linear(fn, n) + gate Linear(n, n)."""
    return 2 * n + (factor * n * n + factor * n) + (factor * n * n + n) + (n * n + n)


def test_ttm_parameter_count():
    """N = 7 patches of 96, D = 64, levels k = 2, 1, 0 with 2 layers each (patches x features:
    28 x 16, 14 x 32, 7 x 64), a decoder that also mixes the 7 channels, a head 7*64 -> 4*96."""
    levels = sum(2 * (gated_mlp_params(7 * 2**k) + gated_mlp_params(64 // 2**k)) for k in (2, 1, 0))
    decoder = gated_mlp_params(7) + gated_mlp_params(64) + gated_mlp_params(7)
    head = 7 * 64 * 384 + 384
    expected = (96 * 64 + 64) + levels + decoder + head
    assert expected == 266_044
    assert sum(p.numel() for p in ttm().parameters()) == expected
    assert sum(p.numel() for p in ttm(draft_stochastic=True).parameters()) == expected + head


def test_timer_draft_with_unit_factors_is_timer():
    flags = dict(d_model=32, n_heads=2, d_ff=48, e_layers=2, input_token_len=4, output_token_len=4)
    timer = tiny_model('timer', **flags)
    draft = tiny_model('timer_draft', **flags, **{f'draft_scale_{name}': 1.0
                                                  for name in ('d_model', 'n_heads', 'd_ff', 'e_layers')})
    draft.load_state_dict(timer.state_dict())
    x = torch.randn(2, 16, 3)
    assert torch.equal(draft(x).mean, timer(x).mean)


@torch.no_grad()
@pytest.mark.parametrize('stochastic', [False, True])
def test_ttm_forecasts_k_patches_after_its_window_in_one_call(stochastic):
    model, x = ttm(draft_stochastic=stochastic, use_norm=True), torch.randn(2, 672, 7)
    out = model(x)
    assert (model.patch_len, model.patches_per_call, model.output_len, model.stochastic) == (96, 4, 384, stochastic)
    assert out.mean.shape == (2, 384, 7) and (out.logvar is None) != stochastic
    if stochastic:
        assert out.logvar.shape == (2, 384, 7)
        torch.testing.assert_close(model.head_logvar.bias, torch.full((384,), -2.0))


@torch.no_grad()
def test_ttm_instance_norm_equivariance():
    model, x = ttm(use_norm=True, draft_stochastic=True), torch.randn(2, 672, 7)
    scale, offset = torch.linspace(0.5, 4.0, 7), torch.linspace(-3.0, 9.0, 7)
    out, out_affine = model(x), model(scale * x + offset)
    torch.testing.assert_close(out_affine.mean, scale * out.mean + offset, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(out_affine.logvar, out.logvar + 2 * torch.log(scale), rtol=1e-4, atol=1e-3)


@torch.no_grad()
@pytest.mark.parametrize('mode, d_mode, independent', [('common_channel', 'common_channel', True),
                                                       ('mix_channel', 'common_channel', False),
                                                       ('common_channel', 'mix_channel', False)])
def test_ttm_channel_mixing(mode, d_mode, independent):
    """Changing variable 1 leaves the others' forecasts unchanged unless a layer mixes channels."""
    model, x = ttm(mode=mode, d_mode=d_mode), torch.randn(2, 672, 7)
    changed = x.clone()
    changed[..., 1] += 1.0
    y, y_changed = model(x).mean, model(changed).mean
    assert (y_changed[..., 1] - y[..., 1]).abs().max() > 1e-4
    others = (y_changed[..., [0, 2, 3]] - y[..., [0, 2, 3]]).abs().max()
    assert (others <= 1e-6) if independent else (others > 1e-4), others


@torch.no_grad()
def test_ttm_causality_its_forecast_depends_on_its_window_only():
    """Rolling over a long series, the forecast made at window end t uses points < t only: changing
    the series from t on leaves it unchanged, and every window patch matters (adaptive patching and
    the patch mixer reach all of them)."""
    model, series = ttm(use_norm=True), torch.randn(1, 672 + 5 * 96, 7)
    later = series.clone()
    later[:, 672 + 2 * 96:] += 3.0
    for end in (672, 672 + 96, 672 + 2 * 96):
        torch.testing.assert_close(model(later[:, end - 672:end]).mean, model(series[:, end - 672:end]).mean,
                                   rtol=0, atol=0)
    base = model(series[:, :672]).mean
    for patch in range(7):
        poked = series[:, :672].clone()
        poked[:, patch * 96] += 1.0
        assert (model(poked).mean - base).abs().amax(dim=1).min() > 1e-6, patch  # every variable, every patch


@pytest.mark.parametrize('flags, message', [
    (dict(hidden_dim=30), '--hidden_dim 30'), (dict(mode='mixed'), "--mode 'mixed'"),
    (dict(ttm_patches=0), '--ttm_patches'), (dict(seq_len=600), '--seq_len 600'),
])
def test_ttm_refuses_impossible_sizes(flags, message):
    with pytest.raises(ValueError, match=message):
        ttm(**flags)


@torch.no_grad()
def test_ttm_refuses_a_cache_other_windows_and_channel_counts():
    model = ttm(mode='mix_channel')
    with pytest.raises(ValueError, match='no KV cache'):
        model(torch.randn(1, 672, 7), KVCache(1))
    with pytest.raises(ValueError, match='--seq_len 672'):
        model(torch.randn(1, 768, 7))
    with pytest.raises(ValueError, match='--n_vars 3'):
        model(torch.randn(1, 672, 3))


def test_component_timer_times_ttm():
    model = ttm()
    timer = ComponentTimer(model)
    with torch.no_grad():
        model(torch.randn(1, 672, 7))
    timer.close()
    assert {'norm_in', 'embedding', 'blocks', 'head', 'denorm_out'} <= set(timer.calls)
    assert 'blocks.attn' not in timer.calls


def test_setting_strings_of_the_new_families():
    ttm_args = make_args(model='ttm', model_id='ETTh1', **TTM_FLAGS, output_token_len=384)
    assert make_setting(ttm_args, 0) == ('forecast_ETTh1_ttm_MultivariateDatasetBenchmark_ETTh1_sl672_it96_ot384_lr0.0001'
                                         '_bt32_wd0_hd64_ly2_ap2_fa2_common_channel_mix_channel_kp4_cosFalse_test_0')
    draft_args = make_args(model='timer_draft', model_id='ETTh1', input_token_len=96, d_model=1024, n_heads=8,
                           d_ff=2048, e_layers=1)
    assert '_el1_dm256_dff512_nh2_' in make_setting(draft_args, 0)


BASE = dict(task_name='forecast', is_training=1, model_id='t', model='timer_xl', data='MultivariateDatasetBenchmark',
            seq_len=192, test_seq_len=192, input_token_len=96, output_token_len=96)


def test_one_call_checks():
    one_call = BlockMap(PatchMap(0), 3)
    check_one_call(PatchMap(0), one_call, 3)
    with pytest.raises(ValueError, match='--spec_k 4 exceeds the 3 patches'):
        check_one_call(PatchMap(0), one_call, 4)
    with pytest.raises(ValueError, match='draft only'):
        check_one_call(one_call, PatchMap(0), 3)
    check_one_call(PatchMap(0), BlockMap(PatchMap(0), 1), 1)  # one patch per call is still a one-call draft
    with pytest.raises(ValueError, match='--spec_k 2 exceeds the 1 patches'):
        check_one_call(PatchMap(0), BlockMap(PatchMap(0), 1), 2)


# ---- one-call drafts in the engine (toy models of helpers.py) ---------------------------------

@pytest.mark.parametrize('mode', ['tolerance', 'lossless'])
def test_one_call_draft_counts_one_call_per_round(mode):
    target, draft = CallSpy(PatchMap(0)), CallSpy(BlockMap(PatchMap(0, offset=0.3), 4))
    out, counters, tracer = decode(target, draft, contexts(7), 38, k=4, sigma=0.6, accept_mode=mode)
    rounds = target.calls
    assert torch.isfinite(out).all() and 0 < counters.accepted < counters.attempted
    assert draft.calls == tracer.n_draft_calls and draft.calls <= rounds
    assert counters.draft_calls == draft.windows  # rows of the draft calls: one per sample and round
    assert counters.draft_calls < counters.attempted  # fewer calls than proposals: the point of one call



# ---- training on a real slice, distillation and speculative runs on ETTh1 ----------------------------------

ETTH1 = dict(root_path=str(ETT_ROOT), data_path='ETTh1.csv', seq_len=192, test_seq_len=192, input_token_len=96,
             test_pred_len=192, num_workers=0, batch_size=16, use_norm=True, dropout=0.0)
SMALL = dict(d_model=16, n_heads=2, d_ff=16, e_layers=1, output_token_len=96)
TTM_SMALL = dict(hidden_dim=16, layers=1, AP_levels=1, mode='common_channel', d_mode='mix_channel', n_vars=7,
                 ttm_patches=2, output_token_len=192, nonautoregressive=True)
TTM_ETTH1 = {**BASE, **ETTH1, **TTM_SMALL}  # a TTM draft's flags on ETTh1
TRAINED = {'timer': SMALL, 'timer_draft': {**SMALL, 'd_model': 64, 'n_heads': 8}, 'ttm': TTM_SMALL}


@pytest.mark.data
@pytest.mark.parametrize('name', TRAINED)
def test_training_lowers_the_loss_on_an_etth1_slice(name, workdir):
    args = run.parse_args(cli_args({**BASE, **ETTH1, 'model': name, **TRAINED[name], 'subset_rand_ratio': 0.05,
                                    'learning_rate': 3e-3}))
    run.seed_everything(args.seed)
    exp = ExpForecast(args)
    batches = [(x.float(), y.float()) for x, y, _, _ in get_loader(args, exp.datasets['train'], 'train')][:4]

    def loss():
        with torch.no_grad():
            return sum(exp._training_loss(x, y).item() for x, y in batches)

    before, optimizer = loss(), exp._optimizer()
    for _ in range(10):
        for x, y in batches:
            optimizer.zero_grad()
            exp._training_loss(x, y).backward()
            optimizer.step()
    assert loss() < 0.7 * before


TARGET = dict(d_model=32, n_heads=2, d_ff=32, e_layers=1, output_token_len=96)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('families')
    save_tiny(root / 'checkpoints' / 'tgt' / 'checkpoint.pth', **{**BASE, **ETTH1, **TARGET})
    return root


@pytest.mark.data
@pytest.mark.slow
def test_ttm_distils_the_targets_rollout(checkpoints, workdir):
    """A one-call student fits the teacher's target-only rollout of its K patches (not the teacher's
    next-token rows), starting from a deterministic TTM mapped into a stochastic one."""
    pretrained = workdir / 'ttm.pth'
    save_tiny(pretrained, 'ttm', 1, **TTM_ETTH1)
    flags = {**BASE, **ETTH1, **TARGET, 'model': 'ttm', **TTM_SMALL, 'distill': True, 'draft_stochastic': True,
             'distill_target_ckpt': checkpoints / 'checkpoints' / 'tgt' / 'checkpoint.pth', 'adaptation': True,
             'pretrain_model_path': pretrained, 'subset_rand_ratio': 0.02}
    args = run.parse_args(cli_args(flags))
    exp = ExpDistill(args)
    x = torch.from_numpy(exp.datasets['val'][0][0])[None]
    rollout = TargetOnlyDecoder(exp.teacher).generate(x, 192, [0])
    torch.testing.assert_close(exp._teacher_forecast(x), rollout)
    assert exp.teacher.output_len == 96 and exp.bare_model.output_len == 192

    def gap():
        with torch.no_grad():
            return (exp.bare_model.eval()(x).mean - rollout).square().mean().item()

    before = gap()
    exp.train(checkpoint_path(args))
    assert gap() < before


@pytest.mark.data
@pytest.mark.parametrize('rollout', ['sliding', 'cached'])
def test_ttm_serves_as_spec_draft_model_from_the_targets_flags(checkpoints, workdir, rollout):
    """The draft is built from the target's flags (--output_token_len 96) and its own TTM flags;
    horizon 288 = 3 patches with K = 2: one round of 2 proposals + bonus, one draft call per window."""
    draft = workdir / 'ttm.pth'
    save_tiny(draft, 'ttm', 1, **TTM_ETTH1)
    flags = {**BASE, **ETTH1, **TARGET, 'is_training': 0, 'checkpoints': checkpoints / 'checkpoints',
             'test_dir': 'tgt', 'test_pred_len': 288, 'test_max_batches': 2, 'use_speculative': True,
             'spec_draft_model': 'ttm', 'spec_draft_ckpt': draft, 'spec_k': 2, 'spec_sigma': 1e6,
             'spec_compare_baseline': True, 'rollout': rollout,
             **{k: v for k, v in TTM_SMALL.items() if k not in ('output_token_len', 'nonautoregressive')}}
    run.main(cli_args(flags))
    [record] = parse_summary(workdir / SUMMARY_FILE)
    assert record['forecasts'] == 32 and record['accepted'] == record['attempted'] == 64
    assert record['draft_calls'] == 32 and record['target_calls'] == 32
    with pytest.raises(UsageError, match='--spec_k 3 exceeds'):
        validate(parse_flags(cli_args({**flags, 'spec_k': 3})))


# ---- a new family is one file ------------------------------------------------------------------------------

NEW_FAMILY = '''
from dataclasses import replace

from models.timer import Timer


class WideTimer(Timer):
    """Timer with twice the flags' feed-forward width: a family that no other file knows of."""

    @staticmethod
    def setting_sizes(config):
        return "wide_" + config.dims.tag()

    def __init__(self, config):
        super().__init__(replace(config, dims=replace(config.dims, d_ff=2 * config.dims.d_ff)))


Model = WideTimer
'''


@pytest.fixture
def new_family(tmp_path, monkeypatch):
    """models/wide_timer.py, dropped into the models package (from a folder of its own)."""
    import models
    folder = tmp_path / 'more_models'
    folder.mkdir()
    (folder / 'wide_timer.py').write_text(NEW_FAMILY)
    monkeypatch.setattr(models, '__path__', [*models.__path__, str(folder)])
    monkeypatch.delitem(sys.modules, 'models.wide_timer', raising=False)
    models.families.cache_clear()
    yield 'wide_timer'
    models.families.cache_clear()


@pytest.mark.data
def test_a_new_family_is_one_file(new_family, checkpoints, workdir):
    """Registry, validation, setting name, checkpoint checks, component timer and the engine take
    models/wide_timer.py as it is: it serves as a draft in both rollouts, and its checkpoint where a
    target is expected is named for what it holds."""
    args = make_args(**{**BASE, **ETTH1, **TARGET, 'model': new_family})
    draft = model_from_flags(new_family, args)
    assert draft.blocks.attn_layers[0].conv1.out_channels == 2 * TARGET['d_ff']
    assert '_wide_el1_dm32_dff32_nh2_' in make_setting(args, 0)
    save_checkpoint(draft, str(workdir / 'wide.pth'))
    spec = {**BASE, **ETTH1, **TARGET, 'is_training': 0, 'checkpoints': checkpoints / 'checkpoints',
            'test_dir': 'tgt', 'test_pred_len': 288, 'test_max_batches': 1, 'use_speculative': True,
            'spec_draft_model': new_family, 'spec_draft_ckpt': workdir / 'wide.pth', 'spec_k': 2,
            'spec_sigma': 1e6, 'trace_inference_breakdown': True}
    for rollout in ('sliding', 'cached'):
        run.main(cli_args({**spec, 'rollout': rollout}))
    records = parse_summary(workdir / SUMMARY_FILE)
    assert [r['accepted'] for r in records] == [32, 32]  # sigma 1e6: every proposal of 16 windows x 2
    with pytest.raises(UsageError, match=f'holds a {new_family} model, but these flags need a timer_xl model'):
        validate(parse_flags(cli_args({**spec, 'use_speculative': False, 'spec_draft_model': 'timer_xl_draft',
                                       'spec_draft_ckpt': None, 'spec_k': None, 'spec_sigma': None,
                                       'test_dir': '.', 'checkpoints': workdir, 'test_file_name': 'wide.pth'})))

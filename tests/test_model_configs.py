"""Each family is built from a frozen configuration read from run.py's flags: a draft's is its target's with the
scaled sizes, a teacher's its target's with the --distill_target_* sizes, and a configuration refuses sizes its
family cannot have."""
import dataclasses
from dataclasses import replace

import pytest
import torch

from conftest import make_args
from models import build_model, config_of, model_from_flags, teacher_config
from models.timer_xl import Dims, TimerConfig, TimerXLConfig
from models.ttm import TTMConfig

TINY = dict(d_model=32, n_heads=2, d_ff=48, e_layers=2, input_token_len=4, output_token_len=4, seq_len=16)
TTM = dict(model='ttm', seq_len=16, input_token_len=4, output_token_len=12, ttm_patches=3, hidden_dim=8, layers=1,
           AP_levels=1, factor=2, mode='common_channel', d_mode='mix_channel', n_vars=3)
SCALED = dict(d_model=1024, n_heads=8, d_ff=2048, e_layers=8, draft_scale_d_model=0.25, draft_scale_n_heads=0.25,
              draft_scale_d_ff=0.25, draft_scale_e_layers=0.25)
FAMILY_CONFIGS = {'timer': TimerConfig, 'timer_draft': TimerConfig, 'timer_xl': TimerXLConfig,
                  'timer_xl_draft': TimerXLConfig, 'ttm': TTMConfig}


def flags_of(name, **overrides):
    return make_args(**{**(TTM if name == 'ttm' else dict(TINY, model=name)), **overrides})


@pytest.mark.parametrize('name', sorted(FAMILY_CONFIGS))
def test_config_of_gives_the_familys_frozen_dataclass(name):
    config = config_of(name, flags_of(name))
    assert type(config) is FAMILY_CONFIGS[name]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.dropout = 0.5


@pytest.mark.parametrize('target, draft, stochastic', [('timer_xl', 'timer_xl_draft', {'stochastic': True}),
                                                       ('timer', 'timer_draft', {})])
def test_a_draft_config_is_its_targets_with_the_scaled_sizes(target, draft, stochastic):
    """1024/8/2048/8 scaled by 0.25: 2 heads, width 256 (a multiple of 4 * 2), d_ff 512, 2 layers."""
    flags = make_args(**{**TINY, **SCALED}, draft_stochastic=bool(stochastic))
    assert config_of(draft, flags) == replace(config_of(target, flags), dims=Dims(256, 2, 512, 2),
                                              scaled_from=Dims(1024, 8, 2048, 8), **stochastic)


@pytest.mark.parametrize('student', ['timer_xl_draft', 'ttm'])
def test_a_teacher_config_has_the_distill_target_sizes_and_is_never_stochastic(student):
    flags = flags_of(student, draft_stochastic=True, distill=True, distill_target_d_model=64,
                     distill_target_n_heads=4, distill_target_d_ff=96, distill_target_e_layers=3)
    teacher = teacher_config(flags.distill_target_model, flags)
    assert type(teacher) is TimerXLConfig and teacher.dims == Dims(64, 4, 96, 3) and not teacher.stochastic
    target = config_of('timer_xl', flags)
    one_patch = {'output_len': flags.input_token_len} if student == 'ttm' else {}  # a TTM student learns K*P points
    assert teacher == replace(target, dims=Dims(64, 4, 96, 3), **one_patch)
    assert teacher.output_len == 4 and target.output_len == flags.output_token_len


@pytest.mark.parametrize('build, message', [
    (lambda: replace(config_of('timer_xl', flags_of('timer_xl')), dims=Dims(30, 4, 48, 1)),
     'd_model 30 is not divisible by n_heads 4'),
    (lambda: replace(config_of('timer_xl', flags_of('timer_xl')), dims=Dims(24, 4, 48, 1)),
     'head dim d_model/n_heads = 6 must be a multiple of 4'),
    (lambda: config_of('timer', flags_of('timer', d_model=30, n_heads=4)), 'd_model 30 is not divisible by n_heads 4'),
    (lambda: config_of('timer_xl', flags_of('timer_xl', d_model=36, n_heads=8)), 'd_model 36 is not divisible by n_heads 8'),
    (lambda: config_of('timer_xl', flags_of('timer_xl', d_model=40, n_heads=4)),
     'head dim d_model/n_heads = 10 must be a multiple of 4'),
    (lambda: config_of('ttm', flags_of('ttm', hidden_dim=9)),
     r"--hidden_dim 9 must be divisible by 2\^--AP_levels = 2"),
    (lambda: config_of('ttm', flags_of('ttm', mode='mixed')), "--mode 'mixed' is not one of"),
])
def test_a_config_refuses_sizes_its_family_cannot_have(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_timer_takes_heads_that_rope_could_not_rotate():
    assert config_of('timer', flags_of('timer', d_model=24, n_heads=4)).dims == Dims(24, 4, 48, 2)


HAND_WRITTEN = {
    'timer_xl': TimerXLConfig(Dims(32, 2, 48, 2), patch_len=4, output_len=4, use_norm=True, dropout=0.0,
                              activation='gelu', flash_attention=False, covariate=True, rope_position='time'),
    'timer': TimerConfig(Dims(32, 2, 48, 2), patch_len=4, output_len=4, use_norm=True, dropout=0.0, activation='gelu',
                         flash_attention=False),
    'ttm': TTMConfig(patch_len=4, context_len=16, patches_per_call=3, hidden_dim=8, layers=1, ap_levels=1, factor=2,
                     mode='common_channel', d_mode='mix_channel', n_vars=3, dropout=0.0, use_norm=True,
                     stochastic=True),
}


@pytest.mark.parametrize('name', sorted(HAND_WRITTEN))
def test_building_from_a_config_equals_building_from_its_flags(name):
    flags = flags_of(name, use_norm=True, dropout=0.0, activation='gelu', covariate=name == 'timer_xl',
                     draft_stochastic=name == 'ttm')
    torch.manual_seed(0)
    from_config = build_model(name, HAND_WRITTEN[name]).state_dict()
    torch.manual_seed(0)
    from_flags = model_from_flags(name, flags).state_dict()
    assert list(from_config) == list(from_flags)
    assert all(torch.equal(from_config[key], value) for key, value in from_flags.items())


@pytest.mark.parametrize('target, draft', [('timer_xl', 'timer_xl_draft'), ('timer', 'timer_draft')])
def test_a_draft_scales_sizes_its_target_could_not_have(target, draft):
    """60 / 7 heads is no head size; scaled by 0.25 it is 2 heads of 8 (--model timer_xl_draft trains no target)."""
    flags = make_args(**{**TINY, **SCALED, 'd_model': 60, 'n_heads': 7})
    with pytest.raises(ValueError, match='d_model 60 is not divisible by n_heads 7'):
        config_of(target, flags)
    assert config_of(draft, flags).dims == Dims(16, 2, 512, 2)

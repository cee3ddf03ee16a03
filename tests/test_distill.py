"""Distillation (training.md section 9) and the pretraining/distillation scripts (scripts/lib.sh).

- The Gaussian NLL and its log-variance regulariser against hand computations.
- A short distillation of a tiny stochastic draft from a fixed random timer_xl teacher on ETTh1: the draft mean
  moves toward the teacher and its variance is calibrated on held-out windows; the teacher is frozen, in eval
  mode, outside the optimiser and the student's checkpoint, and runs once per training batch.
- The deterministic and stochastic distillation losses, --adaptation of a deterministic draft into a stochastic
  one, and the refusal of a teacher checkpoint of other sizes.
- The scripts: syntax, the names of the seed README, and each script's commands, run with a stand-in python
  (FAKE_PY) that records the calls and "trains" by creating the checkpoint file.
"""
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import run
from conftest import cli_args, make_args
from data_provider.data_factory import get_loader
from exp.exp_distill import ExpDistill
from models import build_model
from utils.checkpoint import save_checkpoint
from utils.losses import gaussian_nll
from utils.setting import make_setting

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = REPO_ROOT.parent / 'shared' / 'datasets'
ETT_ROOT = DATASETS / 'ETT-small'
SEED_README = REPO_ROOT.parent / 'shared' / 'seed-README.md'
needs_ett = pytest.mark.skipif(not (ETT_ROOT / 'ETTh1.csv').is_file(), reason=f'ETTh1.csv not found under {ETT_ROOT}')
needs_bash = pytest.mark.skipif(shutil.which('bash') is None, reason='bash not available')

MAPPED_LINE = 'mapped head.* -> head_mean.*; head_logvar.* left at init (bias -2.0)'
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# Teacher (target) sizes 64/4/64/1; the student is the 0.25 draft of them: 16/1/16/1.
TARGET = dict(d_model=64, n_heads=4, d_ff=64, e_layers=1)
WINDOWS = dict(seq_len=192, test_seq_len=192, input_token_len=96, output_token_len=96, test_pred_len=96)


# ---- NLL loss ------------------------------------------------------------------------------------------

def test_nll_is_the_gaussian_negative_log_likelihood_without_its_constant():
    gen = torch.Generator().manual_seed(0)
    mean, target = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen)
    logvar = torch.empty(2, 3, 4).uniform_(-4, 3, generator=gen)  # all above -5: the regulariser is 0
    reference = -torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(target) - HALF_LOG_2PI
    torch.testing.assert_close(gaussian_nll(mean, logvar, target, 0.0), reference.mean())
    torch.testing.assert_close(gaussian_nll(mean, logvar, target, 0.7), reference.mean())
    # one element by hand: 0.5 * (s + (mu - y)^2 * exp(-s))
    one = gaussian_nll(torch.tensor([1.0]), torch.tensor([math.log(4.0)]), torch.tensor([3.0]), 0.0)
    assert one.item() == pytest.approx(0.5 * (math.log(4.0) + 4.0 / 4.0))


def test_nll_regulariser_penalises_only_log_variances_below_minus_5():
    logvar = torch.tensor([-12.0, -7.0, -5.0, -4.5, 0.0, 3.0])
    mean = target = torch.zeros(6)
    nll = (0.5 * logvar).mean()  # the error term is 0
    # relu(-s - 5) = [7, 2, 0, 0, 0, 0] -> mean 1.5
    for reg in (0.0, 0.01, 0.3):
        assert gaussian_nll(mean, logvar, target, reg).item() == pytest.approx(nll.item() + reg * 1.5)


def test_descent_on_logvar_drives_the_variance_to_the_squared_error():
    mean = torch.tensor([0.0, 1.0, -2.0, 0.5, 3.0, 0.0])
    target = torch.tensor([0.3, -0.5, -0.4, 2.5, 3.01, 0.005])
    squared_error = (mean - target).square()
    reg = 0.01
    logvar = torch.zeros(6, requires_grad=True)
    optimizer = torch.optim.SGD([logvar], lr=0.5)
    for _ in range(600):
        optimizer.zero_grad()
        (gaussian_nll(mean, logvar, target, reg) * logvar.numel()).backward()  # per-element gradients
        optimizer.step()
    variance = torch.exp(logvar.detach())
    # Where log(e^2) > -5 the minimum is exp(s) = e^2. Below -5 the regulariser moves the stationary point of
    # 0.5 * (1 - e^2 exp(-s)) - reg = 0 to exp(s) = e^2 / (1 - 2 reg).
    plain = squared_error > math.exp(-5)
    assert plain.sum() == 4
    torch.testing.assert_close(variance[plain], squared_error[plain], rtol=1e-3, atol=0)
    torch.testing.assert_close(variance[~plain], squared_error[~plain] / (1 - 2 * reg), rtol=1e-3, atol=0)


# ---- helpers ------------------------------------------------------------------------------------------------

def save_teacher(path, seed=0, **sizes):
    torch.manual_seed(seed)
    teacher = build_model('timer_xl', make_args(model='timer_xl', use_norm=True, dropout=0.0,
                                                **WINDOWS, **{**TARGET, **sizes}))
    save_checkpoint(teacher, str(path))
    return teacher


def distill_argv(workdir, teacher_path, **flags):
    """run.py flags of a tiny ETTh1 distillation; True -> bare switch, False/None -> omitted."""
    base = dict(task_name='forecast', is_training=1, model_id='ETTh1_draft_distill', model='timer_xl_draft',
                data='MultivariateDatasetBenchmark', root_path=str(ETT_ROOT), data_path='ETTh1.csv', **WINDOWS,
                **TARGET, dropout=0.0, use_norm=True, valid_last=True, distill=True,
                distill_target_ckpt=str(teacher_path), draft_stochastic=True, subset_rand_ratio=0.05, batch_size=32,
                learning_rate=0.003, num_workers=0, checkpoints=str(workdir / 'checkpoints'), seed=2021)
    return cli_args({**base, **flags})


def make_exp(workdir, teacher_path, **flags):
    args = run.parse_args(distill_argv(workdir, teacher_path, **flags))
    run.seed_everything(args.seed)
    return ExpDistill(args)


def held_out_windows(exp, n=256):
    """n windows spread over the test split (never seen in training)."""
    test = exp.datasets['test']
    return torch.stack([torch.from_numpy(test[int(i)][0]) for i in np.linspace(0, len(test) - 1, n)])


@torch.no_grad()
def draft_vs_teacher(exp, x):
    """(MSE of the draft mean to the teacher, fraction of teacher values inside the draft's 95% interval)."""
    exp.bare_model.eval()
    teacher = exp.teacher(x).mean
    mean, logvar = exp.bare_model(x)[:2]
    inside = (teacher - mean).abs() <= 1.959964 * torch.exp(0.5 * logvar)
    return nn.functional.mse_loss(mean, teacher).item(), inside.float().mean().item()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- a short distillation --------------------------------------------------------------------------------

@needs_ett
def test_distillation_fits_the_teacher_and_keeps_it_frozen(workdir, capsys):
    teacher_path = workdir / 'teacher.pth'
    save_teacher(teacher_path)
    teacher_file = torch.load(teacher_path, map_location='cpu', weights_only=True)
    exp = make_exp(workdir, teacher_path, train_epochs=3, cosine=True, tmax=4)
    teacher = exp.teacher
    assert teacher is not exp.bare_model and all(teacher is not m for m in exp.bare_model.modules())
    x = held_out_windows(exp)
    mse_before, _ = draft_vs_teacher(exp, x)

    calls = []  # teacher.training at every teacher forward
    teacher.register_forward_hook(lambda module, inputs, output: calls.append(module.training))
    optimizers = []
    make_optimizer = exp._optimizer
    exp._optimizer = lambda: optimizers.append(make_optimizer()) or optimizers[-1]
    teacher.train()  # whatever switched it to train mode, training must put it back into eval mode
    setting = make_setting(exp.args, 0)
    exp.train(setting)
    teacher_calls = list(calls)

    # The student learned the teacher: closer mean, calibrated 95% interval on held-out windows.
    mse_after, coverage = draft_vs_teacher(exp, x)
    assert mse_after < 0.5 * mse_before, (mse_before, mse_after)
    assert 0.80 <= coverage <= 0.995, coverage

    # One teacher forward per training batch (validation does not use the teacher), always in eval mode.
    n_batches = len(get_loader(exp.args, exp.datasets['train'], 'train'))
    assert len(teacher_calls) == 3 * n_batches and not any(teacher_calls)
    assert not teacher.training
    # Frozen: no gradients, not in the optimiser, weights unchanged.
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    optimised = {id(p) for group in optimizers[0].param_groups for p in group['params']}
    assert optimised == {id(p) for p in exp.bare_model.parameters()}
    assert not optimised & {id(p) for p in teacher.parameters()}
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in teacher_file.items())
    # The student's checkpoint holds exactly the student's tensors.
    saved = torch.load(workdir / 'checkpoints' / setting / 'checkpoint.pth', map_location='cpu', weights_only=True)
    assert saved.keys() == exp.bare_model.state_dict().keys()
    assert {'head_mean.weight', 'head_logvar.weight'} <= saved.keys() and 'head.weight' not in saved
    assert saved['embedding.weight'].shape == (16, 96)  # the draft's, not the teacher's (64, 96)


@needs_ett
def test_deterministic_student_fits_the_teacher_by_plain_mse(workdir):
    teacher_path = workdir / 'teacher.pth'
    save_teacher(teacher_path)
    exp = make_exp(workdir, teacher_path, draft_stochastic=False, draft_teacher_noise=0.5)
    x = held_out_windows(exp, 8)
    exp.model.train()
    labels = torch.randn(8, 192, 7)
    loss = exp._training_loss(x, labels)
    with torch.no_grad():
        expected = nn.functional.mse_loss(exp.model(x).mean, exp.teacher(x).mean)
    torch.testing.assert_close(loss, expected)
    # no noise, and the ground truth is not used
    torch.testing.assert_close(exp._training_loss(x, torch.zeros_like(labels)), expected)


@needs_ett
def test_stochastic_student_fits_a_noisy_teacher_by_nll(workdir):
    teacher_path = workdir / 'teacher.pth'
    save_teacher(teacher_path)
    noise, reg = 0.5, 0.01
    exp = make_exp(workdir, teacher_path, draft_teacher_noise=noise, draft_nll_var_reg=reg)
    x = held_out_windows(exp, 16)
    exp.model.train()
    with torch.no_grad():
        teacher = exp.teacher(x).mean
        mean, logvar = exp.model(x)[:2]
        losses = [exp._training_loss(x, torch.randn_like(teacher)).item() for _ in range(4)]
    assert len(set(losses)) == 4  # fresh noise every batch
    # E over the noise of 0.5 * (s + (mu - Y_T - nu eps)^2 exp(-s)) = 0.5 * (s + ((mu - Y_T)^2 + nu^2) exp(-s))
    expected = (0.5 * (logvar + ((mean - teacher).square() + noise ** 2) * torch.exp(-logvar))).mean()
    expected += reg * torch.relu(-logvar - 5).mean()
    assert np.mean(losses) == pytest.approx(expected.item(), rel=0.02)
    # without noise it is exactly the NLL against the teacher
    exp.args.draft_teacher_noise = 0.0
    torch.testing.assert_close(exp._training_loss(x, torch.zeros_like(teacher)),
                               gaussian_nll(mean, logvar, teacher, reg))


@needs_ett
def test_adaptation_maps_a_deterministic_draft_into_the_stochastic_student(workdir, capsys):
    teacher_path = workdir / 'teacher.pth'
    save_teacher(teacher_path)
    torch.manual_seed(5)
    pretrained = build_model('timer_xl_draft', make_args(model='timer_xl_draft', use_norm=True, **WINDOWS, **TARGET))
    draft_path = workdir / 'draft.pth'
    save_checkpoint(pretrained, str(draft_path))
    capsys.readouterr()
    exp = make_exp(workdir, teacher_path, adaptation=True, pretrain_model_path=str(draft_path))
    assert capsys.readouterr().out.splitlines().count(MAPPED_LINE) == 1
    student, source = exp.bare_model.state_dict(), pretrained.state_dict()
    for part in ('weight', 'bias'):
        assert torch.equal(student[f'head_mean.{part}'], source[f'head.{part}'])
    assert torch.all(student['head_logvar.bias'] == -2.0)
    assert all(torch.equal(student[k], v) for k, v in source.items() if not k.startswith('head.'))


# ---- scripts --------------------------------------------------------------------------------------------------

MULTI = 'MultivariateDatasetBenchmark'
PRETRAIN_SCRIPTS = {  # script -> (model_id, --data, --root_path, --data_path, scale)
    'scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_025x.sh':
        ('draft_pretrain_Weather_025x', MULTI, './dataset/weather/', 'weather.csv', '0.25'),
    'scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_traffic_025x.sh':
        ('draft_pretrain_Traffic_025x', MULTI, './dataset/traffic/', 'traffic.csv', '0.25'),
    'scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_ecl_025x.sh':
        ('draft_pretrain_ECL_025x', MULTI, './dataset/electricity/', 'electricity.csv', '0.25'),
    'scripts/pretrain/timer_xl_draft_ecl_025x.sh':
        ('draft_pretrain_ECL_025x', MULTI, './dataset/electricity/', 'electricity.csv', '0.25'),
    'scripts/pretrain/timer_xl_draft_weather_001x.sh':
        ('draft_pretrain_Weather_001x', MULTI, './dataset/weather/', 'weather.csv', '0.01'),
    'scripts/pretrain/timer_xl_draft_all_datasets_025x.sh':
        ('draft_pretrain_all_datasets_025x', 'Utsd', './dataset/', None, '0.25'),
}
ETT_TARGET, ECL_TARGET = ('1024', '8', '2048', '1'), ('512', '8', '2048', '5')  # d_model, n_heads, d_ff, e_layers
DISTILL = {  # data -> (model id, root, file, target sizes, pretrained draft model id)
    'etth1': ('ETTh1', './dataset/ETT-small/', 'ETTh1.csv', ETT_TARGET, 'draft_pretrain_Weather_025x'),
    'etth2': ('ETTh2', './dataset/ETT-small/', 'ETTh2.csv', ETT_TARGET, 'draft_pretrain_Weather_025x'),
    'ettm1': ('ETTm1', './dataset/ETT-small/', 'ETTm1.csv', ETT_TARGET, 'draft_pretrain_Weather_025x'),
    'ettm2': ('ETTm2', './dataset/ETT-small/', 'ETTm2.csv', ETT_TARGET, 'draft_pretrain_Weather_025x'),
    'weather': ('Weather', './dataset/weather/', 'weather.csv', ETT_TARGET, 'draft_pretrain_Weather_025x'),
    'traffic': ('Traffic', './dataset/traffic/', 'traffic.csv', ECL_TARGET, 'draft_pretrain_Traffic_025x'),
}

# Stand-in for the project python: records each call; `-m utils.setting` answers the --model_id (a unique
# folder name per stage here); fetching does nothing; a training run (is_training 1) creates
# checkpoints/<model_id>/checkpoint.pth, as run.py would at its setting.
FAKE_PY = r'''#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_PY_LOG"
model_id() { local id=""; while [ $# -gt 0 ]; do if [ "$1" = --model_id ]; then id=$2; fi; shift; done; echo "$id"; }
case "$1 $2" in
  "-m utils.setting") shift 2; model_id "$@"; exit 0 ;;
  "-m data_provider.fetch") exit 0 ;;
esac
while [ $# -gt 0 ] && [ "$1" != run.py ]; do shift; done
shift
training=0; prev=""
for a in "$@"; do if [ "$prev" = --is_training ]; then training=$a; fi; prev=$a; done
if [ "$training" = 1 ]; then d="checkpoints/$(model_id "$@")"; mkdir -p "$d"; touch "$d/checkpoint.pth"; fi
'''


class FakeRepo:
    """A copy of scripts/ run with FAKE_PY; `run(script, *args)` returns (stdout, the recorded calls)."""

    def __init__(self, root):
        self.root = root
        shutil.copytree(REPO_ROOT / 'scripts', root / 'scripts')
        self.python = root / 'fake_python'
        self.python.write_text(FAKE_PY)
        self.python.chmod(0o755)
        self.log = root / 'calls.log'

    def run(self, script, *args, **env):
        self.log.write_text('')
        full_env = {k: v for k, v in os.environ.items() if k not in ('EXTRA_ARGS', 'TRAIN', 'TARGET_FAMILY')}
        full_env.update(PY=str(self.python), FAKE_PY_LOG=str(self.log), **env)
        done = subprocess.run(['bash', script, *args], cwd=self.root, env=full_env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout, [line.split() for line in self.log.read_text().splitlines()]


def run_calls(calls):
    """The run.py invocations as (launcher, flags): launcher 'python' or 'torchrun:<n>'."""
    out = []
    for call in calls:
        if call[:2] == ['-u', 'run.py']:
            out.append(('python', call[2:]))
        elif call[:2] == ['-m', 'torch.distributed.run']:
            assert call[2] == '--nproc_per_node' and call[4:6] == ['run.py', '--ddp'], call
            out.append((f'torchrun:{call[3]}', call[6:]))
    return out


def flag(flags, name):
    values = [flags[i + 1] for i, f in enumerate(flags[:-1]) if f == name]
    assert values, f'{name} missing from {flags}'
    return values[-1]


def sizes(flags):
    return tuple(flag(flags, f'--{name}') for name in ('d_model', 'n_heads', 'd_ff', 'e_layers'))


def all_scripts():
    return sorted(p for d in ('pretrain', 'distillation') for p in (REPO_ROOT / 'scripts' / d).rglob('*.sh'))


@needs_bash
def test_scripts_parse_and_are_executable():
    scripts = all_scripts()
    assert {str(p.relative_to(REPO_ROOT)) for p in scripts} >= set(PRETRAIN_SCRIPTS)
    assert len([p for p in scripts if 'distillation' in p.parts and '_timer_xl_draft_' in p.name]) == len(DISTILL)
    for path in [REPO_ROOT / 'scripts' / 'lib.sh', *scripts]:
        done = subprocess.run(['bash', '-n', str(path)], capture_output=True, text=True)
        assert done.returncode == 0, f'{path}: {done.stderr}'
    assert all(os.access(p, os.X_OK) for p in scripts)


@pytest.mark.skipif(not SEED_README.is_file(), reason=f'{SEED_README} not found')
def test_seed_readme_scripts_of_sections_1_to_3_exist():
    text = SEED_README.read_text()
    sections = text[text.index('### 1. Pretraining'):text.index('### 4.')]
    paths = set(re.findall(r'scripts/[\w./-]+\.sh', sections))
    names = set(re.findall(r'[\w.-]+\.sh', sections))
    assert paths and names
    missing = [p for p in paths if not (REPO_ROOT / p).is_file()]
    available = {p.name for p in (REPO_ROOT / 'scripts').rglob('*.sh')}
    missing += sorted(names - available)
    assert not missing, missing


@needs_bash
@pytest.mark.parametrize('script', sorted(PRETRAIN_SCRIPTS))
def test_pretrain_script_runs_the_pretraining_command(tmp_path, script):
    model_id, data, root, data_path, scale = PRETRAIN_SCRIPTS[script]
    repo = FakeRepo(tmp_path)
    stdout, calls = repo.run(script)
    (launcher, flags), = run_calls(calls)
    assert launcher == 'python'
    expected = ['--task_name', 'pretrain', '--is_training', '1', '--model', 'timer_xl_draft', '--model_id', model_id,
                '--data', data, '--root_path', root, *(['--data_path', data_path] if data_path else []),
                '--seq_len', '1536', '--test_seq_len', '1536', '--input_token_len', '96', '--output_token_len', '96',
                '--test_pred_len', '96', '--batch_size', '64', '--learning_rate', '0.0001', '--cosine', '--tmax', '10',
                '--train_epochs', '15', '--use_norm', '--valid_last', '--num_workers', '0',
                '--d_model', '1024', '--n_heads', '8', '--d_ff', '2048', '--e_layers', '1',
                *[x for n in ('d_model', 'n_heads', 'd_ff', 'e_layers') for x in (f'--draft_scale_{n}', scale)]]
    assert flags == expected
    assert stdout.splitlines()[-1] == f'checkpoint: checkpoints/{model_id}/checkpoint.pth'

    # The checkpoint exists now: no retraining unless TRAIN=1.
    assert run_calls(repo.run(script)[1]) == []
    assert len(run_calls(repo.run(script, TRAIN='1')[1])) == 1


@needs_bash
def test_pretrain_script_ddp_family_and_extra_args(tmp_path):
    repo = FakeRepo(tmp_path)
    script = 'scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_ecl_025x.sh'
    _, calls = repo.run(script, '2', TARGET_FAMILY='ecl', EXTRA_ARGS='--subset_rand_ratio 0.2  --train_epochs 3')
    (launcher, flags), = run_calls(calls)
    assert launcher == 'torchrun:2'
    assert sizes(flags) == ECL_TARGET  # -> the 128/2/512/1 draft
    assert flags[-4:] == ['--subset_rand_ratio', '0.2', '--train_epochs', '3']
    setting_calls = [c for c in calls if c[:2] == ['-m', 'utils.setting']]
    assert setting_calls and all(c[-4:] == flags[-4:] for c in setting_calls)


@needs_bash
@pytest.mark.parametrize('data', sorted(DISTILL))
def test_distill_script_makes_target_and_draft_then_distils(tmp_path, data):
    model_id, root, data_path, target_sizes, draft_id = DISTILL[data]
    script = f'scripts/distillation/updated_distillation/{data}_timer_xl_draft_from_target_{data}_stochastic.sh'
    repo = FakeRepo(tmp_path)
    gpus, extra = ('2', '--subset_rand_ratio 0.1') if data == 'traffic' else ('1', '')
    stdout, calls = repo.run(script, gpus, EXTRA_ARGS=extra, TARGET_FAMILY='ett')
    runs = run_calls(calls)
    launcher = f'torchrun:{gpus}' if gpus != '1' else 'python'
    # 1. the target: trained by its own script (then tested at four horizons), with that script's flags
    (l0, train), *tests, (l1, pretrain), (l2, distill) = runs
    assert l0 == 'python' and flag(train, '--model') == 'timer_xl' and flag(train, '--model_id') == model_id
    assert flag(train, '--is_training') == '1' and sizes(train) == target_sizes
    assert [flag(t, '--test_pred_len') for _, t in tests] == ['96', '192', '336', '720']
    # 2. the pretrained draft of the right family
    assert l1 == launcher and flag(pretrain, '--task_name') == 'pretrain' and flag(pretrain, '--model_id') == draft_id
    assert sizes(pretrain) == target_sizes and flag(pretrain, '--draft_scale_d_model') == '0.25'
    # 3. distillation from both
    assert l2 == launcher
    expected = {'--task_name': 'forecast', '--is_training': '1', '--model': 'timer_xl_draft',
                '--model_id': f'{model_id}_draft_distill_stochastic_from_target_{model_id}',
                '--data': 'MultivariateDatasetBenchmark', '--root_path': root, '--data_path': data_path,
                '--seq_len': '672', '--test_seq_len': '672', '--input_token_len': '96', '--output_token_len': '96',
                '--test_pred_len': '96', '--distill_target_model': 'timer_xl',
                '--distill_target_ckpt': f'checkpoints/{model_id}/checkpoint.pth',
                '--pretrain_model_path': f'checkpoints/{draft_id}/checkpoint.pth', '--draft_nll_var_reg': '0.01',
                '--draft_teacher_noise': '0.05', '--learning_rate': '5e-5', '--train_epochs': '15',
                '--batch_size': '64', '--tmax': '10', **{f'--draft_scale_{n}': '0.25' for n in
                                                         ('d_model', 'n_heads', 'd_ff', 'e_layers')}}
    assert {name: flag(distill, name) for name in expected} == expected
    assert sizes(distill) == target_sizes
    for switch in ('--distill', '--adaptation', '--draft_stochastic', '--cosine', '--valid_last', '--use_norm'):
        assert switch in distill
    if extra:  # EXTRA_ARGS reaches every command, also those of the scripts run from this one
        assert all(f[-2:] == extra.split() for _, f in runs)
    assert stdout.splitlines()[-1] == (f'checkpoint: checkpoints/{model_id}_draft_distill_stochastic_from_target_'
                                       f'{model_id}/checkpoint.pth')
    # Everything exists now: nothing runs again; TRAIN=1 re-distils only.
    assert run_calls(repo.run(script)[1]) == []
    (_, again), = run_calls(repo.run(script, TRAIN='1')[1])
    assert flag(again, '--model_id') == expected['--model_id']


@needs_bash
def test_lib_settings_with_the_real_setting_strings():
    """Real `python -m utils.setting`: the folders the scripts check are run.py's (training.md section 3)."""
    command = ('source scripts/lib.sh; into f distill_args etth1; printf "%s\\n" "${f[@]}"; '
               'echo "DISTILLED $(setting_of "${f[@]}")"; echo "ECL $(pretrain_draft_setting ecl 0.25 ecl)"')
    env = {k: v for k, v in os.environ.items() if k not in ('EXTRA_ARGS', 'TARGET_FAMILY')}
    env['PY'] = sys.executable  # this python, whether or not the checkout has a .venv
    done = subprocess.run(['bash', '-c', command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    flags = lines[:-2]
    assert flag(flags, '--distill_target_ckpt') == (
        'checkpoints/forecast_ETTh1_timer_xl_MultivariateDatasetBenchmark_ETTh1_sl672_it96_ot96_lr0.0001_bt32_wd0_'
        'el1_dm1024_dff2048_nh8_cosFalse_test_0/checkpoint.pth')
    assert flag(flags, '--pretrain_model_path') == (
        'checkpoints/draft_pretrain_Weather_025x_timer_xl_draft_MultivariateDatasetBenchmark_weather_sl1536_it96_ot96_'
        'lr0.0001_bt64_wd0_el1_dm256_dff512_nh2_cosTrue_test_0/checkpoint.pth')
    assert lines[-2] == ('DISTILLED forecast_ETTh1_draft_distill_stochastic_from_target_ETTh1_timer_xl_draft_'
                         'MultivariateDatasetBenchmark_ETTh1_sl672_it96_ot96_lr5e-05_bt64_wd0_el1_dm256_dff512_nh2_'
                         'cosTrue_test_0')
    assert lines[-1] == ('ECL draft_pretrain_ECL_025x_timer_xl_draft_MultivariateDatasetBenchmark_electricity_sl1536_'
                         'it96_ot96_lr0.0001_bt64_wd0_el1_dm128_dff512_nh2_cosTrue_test_0')

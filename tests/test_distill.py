"""Distillation (training.md section 9).

- The Gaussian NLL and its log-variance regulariser against hand computations.
- A short distillation of a tiny stochastic draft from a fixed random timer_xl teacher on ETTh1: the draft mean
  moves toward the teacher and its variance is calibrated on held-out windows; the teacher is frozen, in eval
  mode, outside the optimiser and the student's checkpoint, and runs once per training batch.
- The deterministic and stochastic distillation losses, --adaptation of a deterministic draft into a stochastic
  one, and the refusal of a teacher checkpoint of other sizes.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

import run
from cli.paths import checkpoint_path
from conftest import ETT_ROOT, cli_args, save_tiny
from data_provider.data_factory import get_loader
from exp.exp_distill import ExpDistill
from helpers import frozen_stats_forward, token_stats
from utils.losses import gaussian_nll

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
def teacher_path(workdir):
    """The checkpoint of a freshly initialised timer_xl teacher."""
    path = workdir / 'teacher.pth'
    save_tiny(path, use_norm=True, dropout=0.0, **WINDOWS, **TARGET)
    return path


# ---- a short distillation --------------------------------------------------------------------------------

@pytest.mark.data
@pytest.mark.slow
def test_distillation_fits_the_teacher_and_keeps_it_frozen(workdir, teacher_path, capsys):
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
    checkpoint = checkpoint_path(exp.args)
    exp.train(checkpoint)
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
    saved = torch.load(checkpoint, map_location='cpu', weights_only=True)
    assert saved.keys() == exp.bare_model.state_dict().keys()
    assert {'head_mean.weight', 'head_logvar.weight'} <= saved.keys() and 'head.weight' not in saved
    assert saved['embedding.weight'].shape == (16, 96)  # the draft's, not the teacher's (64, 96)


@pytest.mark.data
def test_deterministic_student_fits_the_teacher_by_plain_mse(workdir, teacher_path):
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


@pytest.mark.data
def test_rollout_distillation_fits_the_teacher_on_its_own_cached_rollout(workdir, teacher_path):
    """--distill_rollout_patches 2: each window grows by the teacher's two next patches (its cached rollout:
    every later token normalised with the statistics of the 192 points ending with it), and the student fits
    the teacher on every token of the grown series; the reference is built by hand from full forwards."""
    exp = make_exp(workdir, teacher_path, draft_stochastic=False, distill_rollout_patches=2)
    x = held_out_windows(exp, 4)
    exp.model.train()
    grown = x
    for _ in range(2):
        next_patch = frozen_stats_forward(exp.teacher, grown, token_stats(grown, 192, patch_len=96))[0][:, -96:]
        grown = torch.cat([grown, next_patch], 1)
    stats = token_stats(grown, 192, patch_len=96)
    expected = nn.functional.mse_loss(frozen_stats_forward(exp.bare_model, grown, stats)[0],
                                      frozen_stats_forward(exp.teacher, grown, stats)[0])
    torch.testing.assert_close(exp._training_loss(x, torch.zeros(4, 192, 7)), expected, rtol=1e-4, atol=1e-6)
    plain = make_exp(workdir, teacher_path, draft_stochastic=False)
    assert plain._training_loss(x, torch.zeros(4, 192, 7)).item() != pytest.approx(expected.item(), rel=1e-3)


@pytest.mark.data
def test_validation_against_the_teacher(workdir, teacher_path):
    """--distill_vali teacher: the validation loss is the student's MSE to the teacher's forecast (last O rows,
    --valid_last), not to the truth."""
    exp = make_exp(workdir, teacher_path, draft_stochastic=False, distill_vali='teacher')
    windows = torch.utils.data.Subset(exp.datasets['val'], range(0, 80, 8))
    loader = torch.utils.data.DataLoader(windows, batch_size=4)
    x, y = (torch.stack([torch.as_tensor(w[i]).float() for w in windows]) for i in (0, 1))
    with torch.no_grad():
        exp.bare_model.eval()
        student = exp.bare_model(x).mean[:, -96:]
        to_teacher = nn.functional.mse_loss(student, exp.teacher(x).mean[:, -96:]).item()
        to_truth = nn.functional.mse_loss(student, y[:, -96:]).item()
    assert exp.vali(loader, is_test=True) == pytest.approx(to_teacher, rel=1e-5)
    exp.args.distill_vali = 'truth'
    assert exp.vali(loader, is_test=True) == pytest.approx(to_truth, rel=1e-5)


@pytest.mark.data
def test_stochastic_student_fits_a_noisy_teacher_by_nll(workdir, teacher_path):
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


@pytest.mark.data
def test_adaptation_maps_a_deterministic_draft_into_the_stochastic_student(workdir, teacher_path, capsys):
    draft_path = workdir / 'draft.pth'
    pretrained = save_tiny(draft_path, 'timer_xl_draft', 5, use_norm=True, **WINDOWS, **TARGET)
    capsys.readouterr()
    exp = make_exp(workdir, teacher_path, adaptation=True, pretrain_model_path=str(draft_path))
    assert capsys.readouterr().out.splitlines().count(MAPPED_LINE) == 1
    student, source = exp.bare_model.state_dict(), pretrained.state_dict()
    for part in ('weight', 'bias'):
        assert torch.equal(student[f'head_mean.{part}'], source[f'head.{part}'])
    assert torch.all(student['head_logvar.bias'] == -2.0)
    assert all(torch.equal(student[k], v) for k, v in source.items() if not k.startswith('head.'))

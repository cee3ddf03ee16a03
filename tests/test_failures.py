"""After start-up a run that cannot go on (a diverged loss, a full disk, non-finite test numbers) or is stopped by
Ctrl-C ends with one line on stderr and a non-zero status (1; 130 for Ctrl-C), no traceback, and the checkpoint
saved before it intact."""
import os
import signal
import subprocess
import sys

import pytest
import torch

import run
from bad_inputs import tiny, toy_argv
from cli.parser import parse_flags
from cli.paths import checkpoint_path
from conftest import REPO_ROOT
from exp.exp_forecast import RESUME_FILE, ExpForecast
from utils.checkpoint import save_checkpoint

BATCHES_PER_EPOCH = 7  # toy.csv's train split: 280 rows hold 209 windows of 48 + 24, in batches of 32


def checkpoint_of(argv):
    return checkpoint_path(parse_flags(argv))


def last_line(err):
    """The message below the progress bars (tqdm draws them on stderr, redrawing with carriage returns)."""
    assert 'Traceback' not in err
    return err.replace('\r', '\n').strip().splitlines()[-1]


def run_failing(argv, capsys):
    """(exit status, the last line on stderr) of run.main(argv); the message is the only error line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run.main(argv)
    err = capsys.readouterr().err
    assert err.count('error: ') + err.count('interrupted (Ctrl-C)') == 1, err
    return exit_info.value.code, last_line(err)


def test_a_nan_training_loss_stops_the_run_and_keeps_the_best_checkpoint(toy_workdir, monkeypatch, capsys):
    argv = toy_argv(toy_workdir, train_epochs=3)
    path, saved = checkpoint_of(argv), {}
    loss, calls = ExpForecast._training_loss, []

    def diverging_loss(self, x, y):
        calls.append(1)
        if len(calls) <= BATCHES_PER_EPOCH:
            return loss(self, x, y)
        saved.setdefault('bytes', open(path, 'rb').read())  # what epoch 1 saved
        return loss(self, x, y) * float('nan')

    monkeypatch.setattr(ExpForecast, '_training_loss', diverging_loss)
    status, line = run_failing(argv, capsys)
    assert status == 1
    assert 'training loss of epoch 2, batch 1 is nan' in line and f'{path} holds the best epoch' in line
    assert open(path, 'rb').read() == saved['bytes']
    assert not os.path.exists('result_long_term_forecast.txt')


def test_a_nan_validation_loss_saves_nothing(toy_workdir, monkeypatch, capsys):
    argv = toy_argv(toy_workdir)
    monkeypatch.setattr(ExpForecast, 'vali', lambda self, loader, **kw: float('nan'))
    status, line = run_failing(argv, capsys)
    assert status == 1
    assert 'validation loss of epoch 1 is nan' in line and 'no checkpoint saved' in line
    assert not os.path.exists(checkpoint_of(argv))


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(toy_workdir, monkeypatch, capsys):
    argv = toy_argv(toy_workdir, train_epochs=3, patience=3)
    path, save, calls = checkpoint_of(argv), torch.save, []
    monkeypatch.setattr(ExpForecast, 'vali', lambda self, loader, **kw: 1.0 - 0.1 * len(calls))  # always better

    def filling_save(obj, f, *args, **kwargs):
        if 'checkpoint.pth' not in str(f):  # resume.pth of each epoch: written
            return save(obj, f, *args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            return save(obj, f, *args, **kwargs)
        raise RuntimeError('[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file '
                           'data/0: file write failed\nframe #0: ...')

    monkeypatch.setattr(torch, 'save', filling_save)
    status, line = run_failing(argv, capsys)
    monkeypatch.setattr(torch, 'save', save)
    assert status == 1
    assert f'could not write {path}' in line and 'file write failed' in line
    assert 'the previous file is kept' in line
    assert sorted(os.listdir(os.path.dirname(path))) == ['checkpoint.pth', 'manifest.json', RESUME_FILE]
    assert torch.load(path, weights_only=True).keys() == tiny().state_dict().keys()


def test_a_test_with_non_finite_forecasts_exits_non_zero_and_records_nothing(toy_workdir, capsys):
    model = tiny()
    with torch.no_grad():
        model.head.weight.fill_(3e38)  # finite weights whose forecasts overflow
    save_checkpoint(model, str(toy_workdir / 'checkpoints' / 'target' / 'checkpoint.pth'))
    status, line = run_failing(toy_argv(toy_workdir, is_training=0, test_dir='target'), capsys)
    assert status == 1
    assert 'test MSE of target is' in line and 'no result was recorded' in line
    assert not os.path.exists('result_long_term_forecast.txt')


def test_ctrl_c_during_a_test_is_one_line_and_status_130(toy_workdir, monkeypatch, capsys):
    save_checkpoint(tiny(), str(toy_workdir / 'checkpoints' / 'target' / 'checkpoint.pth'))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ExpForecast, '_forecast_batch', interrupted)
    status, line = run_failing(toy_argv(toy_workdir, is_training=0, test_dir='target'), capsys)
    assert status == 130 and line.startswith('interrupted (Ctrl-C)')


@pytest.mark.slow
def test_ctrl_c_during_training_is_one_line_status_130_and_keeps_the_checkpoint(toy_workdir):
    argv = toy_argv(toy_workdir, train_epochs=1000, patience=1000)
    child = subprocess.Popen([sys.executable, '-u', str(REPO_ROOT / 'run.py'), *argv], cwd=toy_workdir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if 'Updating learning rate' in line:  # after the first save
                break
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert last_line(err).startswith('interrupted (Ctrl-C)')
    state = torch.load(checkpoint_of(argv), weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())

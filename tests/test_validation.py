"""Start-up validation (cli/validate.py, cli/checks/), checkpoint manifests and atomic saves.

Every bad input of tests/bad_inputs.py, one test per class of mistake: exit status 2, one line on stderr that
names the flag or file, no traceback, no experiment started, nothing created or changed in the working folder."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import run
from bad_inputs import TOY, cases_of, prepare, tiny, toy_argv, trained_folder
from cli import paths
from cli.parser import parse_flags
from cli.paths import make_setting
from conftest import REPO_ROOT, cli_args, write_csv
from utils.checkpoint import save_checkpoint, write_manifest


def tree(folder):
    """Every file and folder under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob('*')}


def refuse_experiments(monkeypatch):
    def started(args):
        raise AssertionError('an experiment was started: models or data loaders would be built')
    monkeypatch.setattr(run, 'experiment_class', started)


def assert_refused(case, workdir, capsys, monkeypatch):
    argv = prepare(case, workdir)
    before = tree(workdir)
    capsys.readouterr()
    refuse_experiments(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        run.main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    assert 'Traceback' not in out + err
    missing = [fragment for fragment in case.named if fragment not in lines[0]]
    assert not missing, f'{missing} not in: {lines[0]}'
    assert tree(workdir) == before  # no checkpoint, result file or test_results/ created, nothing changed


def ids(cases):
    return [c.name for c in cases]


@pytest.mark.parametrize('case', cases_of('data'), ids=ids(cases_of('data')))
def test_bad_data_file(case, workdir, capsys, monkeypatch):
    assert_refused(case, workdir, capsys, monkeypatch)


@pytest.mark.parametrize('case', cases_of('lengths'), ids=ids(cases_of('lengths')))
def test_bad_length(case, workdir, capsys, monkeypatch):
    assert_refused(case, workdir, capsys, monkeypatch)


@pytest.mark.parametrize('case', cases_of('checkpoints'), ids=ids(cases_of('checkpoints')))
def test_bad_checkpoint(case, workdir, capsys, monkeypatch):
    assert_refused(case, workdir, capsys, monkeypatch)


@pytest.mark.parametrize('case', cases_of('combinations'), ids=ids(cases_of('combinations')))
def test_flag_that_does_nothing_or_cannot_work(case, workdir, capsys, monkeypatch):
    assert_refused(case, workdir, capsys, monkeypatch)


@pytest.mark.parametrize('case', cases_of('folders'), ids=ids(cases_of('folders')))
def test_checkpoint_folder_of_another_experiment(case, workdir, capsys, monkeypatch):
    assert_refused(case, workdir, capsys, monkeypatch)


# ---- what is accepted ------------------------------------------------------------------------------------

@pytest.mark.parametrize('run_only', [dict(test_pred_len=48), dict(num_workers=0, itr=1, visualize=True),
                                      dict(test_max_batches=2, flash_attention=True)],
                         ids=['horizon', 'workers-plots', 'test-batches'])
def test_retraining_with_the_same_model_and_data_flags_is_allowed(workdir, run_only):
    write_csv(workdir / 'toy.csv')
    argv = toy_argv(workdir)
    trained_folder()(workdir, argv)
    assert vars(run.parse_args(toy_argv(workdir, **run_only))).items() >= run_only.items()


def test_overwrite_checkpoint_replaces_a_folder_of_other_flags(workdir, capsys):
    write_csv(workdir / 'toy.csv')
    argv = toy_argv(workdir)
    folder = trained_folder(dict(use_norm=True, seed=7))(workdir, argv)
    old = torch.load(folder / 'checkpoint.pth', weights_only=True)
    run.main(argv + ['--overwrite_checkpoint'])
    assert sorted(os.listdir(folder)) == ['checkpoint.pth', 'manifest.json']
    manifest = json.loads((folder / 'manifest.json').read_text())
    assert (manifest['use_norm'], manifest['seed'], manifest['data_path']) == (False, 2021, 'toy.csv')
    new = torch.load(folder / 'checkpoint.pth', weights_only=True)
    assert new.keys() == old.keys() and not torch.equal(new['head.weight'], old['head.weight'])
    run.parse_args(argv)  # the folder now records these flags: retraining without the flag is allowed


def test_the_data_file_is_part_of_the_checkpoint_folder():
    base = dict(TOY, data_path='ETTh1.csv')
    names = {data_path: make_setting(parse_flags(cli_args({**base, 'data_path': data_path})), 0)
             for data_path in ('ETTh1.csv', 'ETTh2.csv', 'sub/ETTh1.csv')}
    assert '_ETTh1_' in names['ETTh1.csv'] and '_ETTh2_' in names['ETTh2.csv']
    assert names['ETTh1.csv'] != names['ETTh2.csv']
    assert names['sub/ETTh1.csv'] == names['ETTh1.csv']  # same stem: told apart by the manifest's --data_path


@pytest.mark.slow
def test_paths_module_prints_the_checkpoint_a_command_line_trains_inside_its_checkpoints_folder(workdir):
    argv = toy_argv(workdir) + ['--checkpoints', str(workdir / 'elsewhere')]
    done = subprocess.run([sys.executable, '-m', 'cli.paths', *argv], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == str(workdir / 'elsewhere' / make_setting(parse_flags(argv), 0) / 'checkpoint.pth') + '\n'


@pytest.mark.parametrize('sizes, named', [(['--d_model', '30', '--n_heads', '4'], '--d_model 30'),
                                          (['--model', 'ttm', '--hidden_dim', '15', '--AP_levels', '1'], '--hidden_dim 15')])
def test_paths_module_refuses_sizes_no_model_has_in_one_line(workdir, sizes, named, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['cli.paths', *toy_argv(workdir), *sizes])
    with pytest.raises(SystemExit) as stopped:
        paths.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(err) == 1 and named in err[0], err


# ---- atomic saves ----------------------------------------------------------------------------------------

# Saves a checkpoint with a torch.save that stalls after writing half a file, so the parent can kill it mid-save.
STALLED_SAVE = '''
import sys, time
sys.path.insert(0, sys.argv[1])
import torch
from utils.checkpoint import save_checkpoint

def stalled_save(obj, path, *args, **kwargs):
    with open(path, "wb") as f:
        f.write(b"half a checkpoint")
    print("stalled", flush=True)
    time.sleep(120)

torch.save = stalled_save
save_checkpoint(torch.nn.Linear(2, 2), sys.argv[2])
'''


@pytest.mark.slow
def test_a_save_killed_by_sigkill_keeps_the_old_checkpoint_and_the_next_save_cleans_up(tmp_path):
    folder = tmp_path / 'setting'
    path = folder / 'checkpoint.pth'
    old, new = tiny(), tiny(seed=3)
    save_checkpoint(old, str(path))
    write_manifest(str(folder), parse_flags(cli_args(TOY)))
    child = subprocess.Popen([sys.executable, '-c', STALLED_SAVE, str(REPO_ROOT), str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == 'stalled\n', child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        child.kill()
        child.communicate()
    names = sorted(os.listdir(folder))
    partial = [n for n in names if n.startswith('.partial-checkpoint.pth-')]
    assert len(partial) == 1 and sorted(set(names) - set(partial)) == ['checkpoint.pth', 'manifest.json'], names
    loaded = torch.load(path, weights_only=True)
    assert loaded.keys() == old.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in old.state_dict().items())

    save_checkpoint(new, str(path))
    assert sorted(os.listdir(folder)) == ['checkpoint.pth', 'manifest.json']
    loaded = torch.load(path, weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in new.state_dict().items())


def test_a_file_system_without_room_for_the_checkpoint_is_refused(workdir, monkeypatch, capsys):
    write_csv(workdir / 'toy.csv')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: shutil._ntuple_diskusage(2 ** 30, 2 ** 30 - 1000, 1000))
    refuse_experiments(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        run.main(toy_argv(workdir))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1
    assert err.startswith('error: --checkpoints') and '0.0 MiB free' in err and 'timer_xl checkpoint needs' in err


@pytest.mark.slow
def test_a_checkpoint_folder_another_live_run_trains_into_is_refused_and_a_stale_lock_taken_over(
        workdir, monkeypatch, capsys):
    write_csv(workdir / 'toy.csv')
    argv = toy_argv(workdir, dropout=0.2)  # the same folder as a run with another --dropout
    experiment_class = run.experiment_class
    folder = workdir / 'checkpoints' / make_setting(parse_flags(argv), 0)
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (folder / 'run.lock').write_text(f'{holder.pid}\n')
        refuse_experiments(monkeypatch)
        with pytest.raises(SystemExit) as exit_info:
            run.main(argv)
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1
    assert err.startswith(f'error: {folder} is in use: process {holder.pid} is training into it')
    monkeypatch.setattr(run, 'experiment_class', experiment_class)
    run.main(argv)  # the holder is gone: the lock is stale
    assert sorted(os.listdir(folder)) == ['checkpoint.pth', 'manifest.json']

"""Sweeps: the grid runner (scripts/sweep.py) end to end with tiny models, and the analysis
(scripts/analysis/parse_sweep_results.py) on hand-made sweep folders."""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ETT_ROOT, REPO_ROOT, cli_args, save_tiny


def load_script(path):
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO_ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sweep = load_script('scripts/sweep.py')
analysis = load_script('scripts/analysis/parse_sweep_results.py')


# ---------------------------------------------------------------- the runner

def test_grid_points_names_and_fixed_axes():
    axes = sweep.parse_grid(['--spec_k', '1', '2', '--rollout', 'sliding', 'cached'])
    assert axes == [('--spec_k', ['1', '2']), ('--rollout', ['sliding', 'cached'])]
    points = sweep.grid_points(axes)
    assert [sweep.point_name(p) for p in points] == ['spec_k-1__rollout-sliding', 'spec_k-1__rollout-cached',
                                                     'spec_k-2__rollout-sliding', 'spec_k-2__rollout-cached']
    assert sweep.fix_axes(axes, ['--rollout', 'sliding', '--use_norm']) == [('--spec_k', ['1', '2']),
                                                                          ('--rollout', ['sliding'])]
    assert sweep.flag_values(['--a', '1', '--b', '--a', '-2']) == {'--a': '-2', '--b': True}
    for bad in (['1', '--spec_k'], ['--spec_k'], ['--spec_k', '1', '--spec_k', '2']):
        with pytest.raises(sweep.UsageError):
            sweep.parse_grid(bad)


def test_a_finished_point_is_the_same_command_whatever_the_order_of_its_flags():
    program = ['python', '-u', 'run.py']
    command = program + ['--spec_k', '2', '--use_norm', '--spec_calib_sigmas', '0.1', '0.5']
    assert sweep.same_command(program + ['--use_norm', '--spec_calib_sigmas', '0.1', '0.5', '--spec_k', '2'], command)
    assert sweep.same_command(command + ['--spec_k', '2'], command)  # a repeated flag: its last value counts
    assert not sweep.same_command(program + ['--spec_k', '2', '--use_norm', '--spec_calib_sigmas', '0.1', '0.7'],
                                  command)
    assert not sweep.same_command(command[:-1], command)
    assert not sweep.same_command(['python3'] + command[1:], command)


P, L, H = 96, 192, 192
TINY = dict(d_model=32, n_heads=2, d_ff=32, e_layers=1, seq_len=L, input_token_len=P, output_token_len=P,
            test_seq_len=L, test_pred_len=H)


@pytest.fixture
def tiny_sweep(tmp_path):
    """`run()` runs a two-point sweep (K 1 and 2; `run(*grid)`: that grid) of a tiny target with a tiny
    stochastic draft, both freshly initialised, and returns (exit status, stdout); `out` is its folder."""
    save_tiny(tmp_path / 'checkpoints/tgt/checkpoint.pth', **TINY)
    save_tiny(tmp_path / 'draft.pth', 'timer_xl_draft', **TINY, draft_stochastic=True)
    flags = cli_args(dict(task_name='forecast', is_training=0, model_id='t', model='timer_xl',
                          data='MultivariateDatasetBenchmark', root_path=ETT_ROOT, data_path='ETTh1.csv',
                          checkpoints=tmp_path / 'checkpoints', test_dir='tgt', num_workers=0, batch_size=4,
                          test_max_batches=1, use_speculative=True, spec_draft_ckpt=tmp_path / 'draft.pth',
                          draft_stochastic=True, spec_compare_baseline=True, **TINY))
    out = tmp_path / 'sweep_results_tiny'
    env = {k: v for k, v in os.environ.items() if k not in ('EXTRA_ARGS', 'SWEEP_ARGS')}

    def command(*grid):
        return [sys.executable, str(REPO_ROOT / 'scripts/sweep.py'), str(out), *(grid or ('--spec_k', '1', '2')), '--',
                *flags]

    def run(*grid, **extra_env):
        done = subprocess.run(command(*grid), env={**env, **extra_env}, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr

    run.command, run.env = command, env
    return run, out


@pytest.mark.data
@pytest.mark.slow
def test_two_point_sweep_runs_skips_and_redoes_only_what_is_missing(tiny_sweep):
    run, out = tiny_sweep
    status, output = run()
    assert status == 0, output
    assert '= 2 runs' in output
    points = [out / 'spec_k-1', out / 'spec_k-2']
    for k, folder in enumerate(points, start=1):
        assert (folder / 'done').is_file()
        record = (folder / 'result_inference_summary.txt').read_text()
        assert record.count('mode:speculative') == 1 and f'spec_k:{k},' in record
        assert json.loads((folder / 'point.json').read_text())['flags']['--spec_k'] == str(k)
    stamps = {p: (p / 'done').stat().st_mtime_ns for p in points}

    status, output = run()  # everything finished: both skipped, nothing runs
    assert status == 0 and output.count(': done') == 2 and 'skip' in output, output
    assert {p: (p / 'done').stat().st_mtime_ns for p in points} == stamps

    shutil.rmtree(points[1])  # one point's results deleted: only that point runs again
    status, output = run()
    assert status == 0, output
    assert f'skip {points[0]}: done' in output and f'done {points[1]}' in output
    assert (points[0] / 'done').stat().st_mtime_ns == stamps[points[0]]
    assert (points[1] / 'result_inference_summary.txt').read_text().count('mode:speculative') == 1

    # SWEEP_ARGS fixes an axis (and ignores a flag that is no axis): only K 2 is left, and it is done
    status, output = run(SWEEP_ARGS='--spec_k 2 --no_such_axis 1')
    assert status == 0 and '--spec_k {2} = 1 runs' in output and f'skip {points[1]}: done' in output, output
    # other flags for a finished point: refused before anything runs, its results kept
    record = (points[1] / 'result_inference_summary.txt').read_text()
    status, output = run(SWEEP_ARGS='--spec_k 2', EXTRA_ARGS='--spec_sigma 0.3')
    assert status == 2 and output.strip().splitlines() == [
        f'error: point {points[1]} finished with other flags (--spec_sigma (not given) then, 0.3 now); its results '
        f'are kept: sweep into another OUT folder, or delete that point to redo it'], output
    assert (points[1] / 'result_inference_summary.txt').read_text() == record


@pytest.mark.data
@pytest.mark.slow
def test_a_second_sweep_into_a_folder_in_use_is_refused(tiny_sweep, capsys):
    run, out = tiny_sweep
    out.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (out / 'sweep.lock').write_text(f'{holder.pid}\n')
        with pytest.raises(SystemExit) as exit_info:
            sweep.main(run.command()[2:])
    finally:
        holder.kill()
        holder.wait()
    assert exit_info.value.code == 2 and capsys.readouterr().err.splitlines() == [
        f'error: {out} is in use: process {holder.pid} is sweeping into it (lock {out / "sweep.lock"}); wait for it '
        f'to end, or delete the lock if that process is not this program']
    assert os.listdir(out) == ['sweep.lock']


@pytest.mark.data
@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_with_one_line_and_leaves_it_resumable(tiny_sweep):
    run, out = tiny_sweep
    child = subprocess.Popen(run.command('--spec_k', '1'), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env=run.env)
    try:
        for line in child.stdout:
            if 'to run' in line:  # the points are announced: run.py starts next
                break
        os.killpg(child.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the sweep and its run.py
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert 'Traceback' not in err and err.strip().splitlines()[-1] == (
        'interrupted (Ctrl-C): finished points are kept; the same command resumes the sweep')
    assert not (out / 'sweep.lock').exists()
    assert not (out / 'spec_k-1' / 'done').exists()  # not done: the same command runs it again


@pytest.mark.data
@pytest.mark.slow
def test_a_bad_point_stops_the_sweep_before_any_point_runs(tiny_sweep):
    """K 0 is the second point: the first, valid, point must not run either, and no folder is made."""
    run, out = tiny_sweep
    status, output = run('--spec_k', '1', '0')
    assert status == 2, output
    assert output.strip().splitlines() == ['error: point spec_k-0: --spec_k 0 must be >= 1']
    assert not out.exists()
    status, output = run('--spec_k', '1', EXTRA_ARGS='--no_such_flag')
    assert status == 2 and output.strip().splitlines() == [
        'error: unrecognized arguments: --no_such_flag (see --help)'], output
    assert not out.exists()


@pytest.mark.slow
def test_sweep_usage_errors_are_one_line_and_exit_2(tmp_path):
    (tmp_path / 'a_file').write_text('')
    for argv in ([], [str(tmp_path / 'out')], [str(tmp_path / 'out'), '1', '--', '--model', 'timer_xl'],
                 [str(tmp_path / 'a_file'), '--spec_k', '1', '--', '--model', 'timer_xl']):
        done = subprocess.run([sys.executable, str(REPO_ROOT / 'scripts/sweep.py'), *argv], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith('error: ') and 'Traceback' not in done.stderr
    assert not (tmp_path / 'out').exists()


# ---------------------------------------------------------------- the analysis

def summary(mode, mse, speedup=None, k=3, sigma=0.7, bias=1, accept=80.0, predicted=1.5):
    """A result_inference_summary.txt record as run.py writes it (utils/records.py)."""
    lines = ['setting:tgt', f'mode:{mode}', f'mse:{mse:.6f}, mae:0.400000',
             'total_gen_time_s:1.000000, per_batch_s:0.500000']
    if mode == 'standard':
        return '\n'.join(lines + ['rollout:sliding, target_sample:0']) + '\n\n'
    lines += [f'accepted:8, attempted:10, acceptance_pct:{accept:.2f}',
              f'spec_k:{k}, spec_sigma:{sigma:g}, spec_accept_bias:{bias:g}, accept_mode:tolerance, rollout:sliding, '
              'draft_stochastic:1, spec_adaptive:0, test_pred_len:720, batch_size:32',
              'forecasts:32, target_calls:4, target_calls_per_forecast:2.000, target_only_calls_per_forecast:8, '
              'draft_calls:12, patches_per_target_call:2.500, residual_fallbacks:0, future_key:5',  # a key the parser does not know
              f'baseline_per_batch_s:0.600000, speedup:{speedup:.3f}, mse_vs_target:0.010000',
              f'measured_cost_ratio_c:0.1000, verify_cost_v:1.2000, predicted_speedup:{predicted:.3f}']
    return '\n'.join(lines) + '\n\n'


def make_point(out, name, record=None, done=True, started=True, **flags):
    """A point folder as scripts/sweep.py leaves it."""
    folder = out / name
    folder.mkdir(parents=True)
    argv = ['--test_pred_len', '720', '--batch_size', '32']
    if 'spec_k' in flags:
        argv += ['--use_speculative', '--spec_compare_baseline', '--spec_accept_mode', 'tolerance']
    for flag, value in flags.items():
        argv += [f'--{flag}', str(value)]
    (folder / 'point.json').write_text(json.dumps({'axes': [], 'flags': sweep.flag_values(argv), 'command': argv}))
    if started:
        (folder / 'run.log').write_text('...')
    if record is not None:
        (folder / 'result_inference_summary.txt').write_text(record)
    if done:
        (folder / 'done').write_text('command')


# (K, sigma, speedup, MSE): the target alone has MSE 0.40. C is beaten by B.
POINTS = {'A': (1, 0.1, 1.5, 0.42), 'B': (2, 0.1, 1.2, 0.40), 'C': (3, 0.1, 1.1, 0.41), 'D': (1, 0.3, 0.9, 0.399),
          'E': (2, 0.3, 1.6, 0.43)}


@pytest.fixture
def handmade(tmp_path):
    out = tmp_path / 'sweep_results_handmade'
    make_point(out, 'target', summary('standard', 0.40))
    for name, (k, sigma, speedup, mse) in POINTS.items():
        make_point(out, name, summary('speculative', mse, speedup, k=k, sigma=sigma, accept=10 * k + sigma),
                   spec_k=k, spec_sigma=sigma)
    truncated = summary('speculative', 0.39, 3.0).split('baseline_per_batch_s')[0] + 'baseline_per_b'
    make_point(out, 'F_truncated', truncated, spec_k=3, spec_sigma=0.3)
    make_point(out, 'G_not_run', done=False, started=False, spec_k=3, spec_sigma=0.7)
    make_point(out, 'H_interrupted', summary('speculative', 0.3, 9.0), done=False, spec_k=1, spec_sigma=0.7)
    return out


def test_damaged_point_files_are_one_line_each_in_the_analysis(handmade, capsys):
    for name, text in (('J_cut', b'{"axes": [], "fla'), ('K_binary', bytes(range(256))), ('L_list', b'[1, 2]'),
                       ('M_no_flags', b'{"axes": []}')):
        (handmade / name).mkdir()
        (handmade / name / 'point.json').write_bytes(text)
    (handmade / 'O_folder' / 'point.json').mkdir(parents=True)
    make_point(handmade, 'N_binary_record', spec_k=1, spec_sigma=0.1)
    (handmade / 'N_binary_record' / 'result_inference_summary.txt').write_bytes(b'\xff\xfe\x00binary')
    analysis.main([str(handmade)])
    err = capsys.readouterr().err
    assert 'Traceback' not in err and '6 of 15 points finished; missing:' in err
    for name, reason in (('J_cut', 'JSONDecodeError'), ('K_binary', 'UnicodeDecodeError'), ('L_list', 'TypeError'),
                         ('M_no_flags', 'KeyError'), ('O_folder', 'IsADirectoryError')):
        assert f'  {name}: damaged point.json (not written by sweep.py: {reason})' in err.splitlines()
    assert any(line.startswith('  N_binary_record: unreadable result_inference_summary.txt (')
               for line in err.splitlines())


def test_analysis_table_statuses_and_missing(handmade, capsys):
    analysis.main([str(handmade), '--mse_budget', '1%', '5', '--markdown', str(handmade / 'table.md')])
    out, err = capsys.readouterr()
    assert '6 of 9 points finished; missing:' in err
    assert 'F_truncated: truncated record (missing speedup, mse_vs_target, predicted_speedup, baseline_per_b)' in err
    assert 'G_not_run: not run' in err and 'H_interrupted: unfinished' in err
    table = [line for line in (handmade / 'table.md').read_text().splitlines() if line.startswith('| ')]
    assert table[1:] == [  # header, then the finished speculative points in name order
        '| 720 | 32 | sliding | 1 | tolerance | 0.1 | 1 | 10.1 | 2.50 | 0.4200 | +5.00 | 1.00e-02 | 1.50 | 1.50 | * |',
        '| 720 | 32 | sliding | 2 | tolerance | 0.1 | 1 | 20.1 | 2.50 | 0.4000 | +0.00 | 1.00e-02 | 1.20 | 1.50 | * |',
        '| 720 | 32 | sliding | 3 | tolerance | 0.1 | 1 | 30.1 | 2.50 | 0.4100 | +2.50 | 1.00e-02 | 1.10 | 1.50 | - |',
        '| 720 | 32 | sliding | 1 | tolerance | 0.3 | 1 | 10.3 | 2.50 | 0.3990 | -0.25 | 1.00e-02 | 0.90 | 1.50 | * |',
        '| 720 | 32 | sliding | 2 | tolerance | 0.3 | 1 | 20.3 | 2.50 | 0.4300 | +7.50 | 1.00e-02 | 1.60 | 1.50 | * |']
    assert 'fastest within +1% of the target\'s MSE:\n  horizon 720, batch 32: rollout sliding, mode tolerance, ' \
           'K 2, sigma 0.1, bias 1: speedup 1.20, MSE 0.4000 (+0.00% vs target 0.4000) [B]' in out
    assert 'fastest within +5% of the target\'s MSE:\n  horizon 720, batch 32: rollout sliding, mode tolerance, ' \
           'K 1, sigma 0.1, bias 1: speedup 1.50' in out
    rows = list(__import__('csv').DictReader(open(handmade / 'sweep_summary.csv')))
    assert len(rows) == 9 and rows[0]['target_calls_per_forecast'] == '2.0' and rows[0]['future_key'] == '5'
    for name in analysis.PLOTS:
        assert (handmade / name).stat().st_size > 1000


def test_pareto_front_and_budget_on_handmade_points():
    points = [(speedup, mse) for _, _, speedup, mse in POINTS.values()]
    assert analysis.pareto_front(points) == [0, 1, 3, 4]  # A, B, D, E
    assert analysis.pareto_front([(1.0, 0.5), (1.0, 0.5)]) == [0, 1]  # ties beat nobody
    rows = [dict(point=name, speculative=True, status='finished', test_pred_len=720, batch_size=32, spec_k=k,
                 speedup=speedup, mse=mse) for name, (k, _, speedup, mse) in POINTS.items()]
    rows.append(dict(point='T', speculative=False, status='finished', test_pred_len=720, batch_size=32, mse=0.40))
    analysis.add_target_mse(rows)
    best = {pct: analysis.fastest_within(rows, pct)[(720, 32)][1]['point'] for pct in (0, 1, 2.5, 5, 10)}
    assert best == {0: 'B', 1: 'B', 2.5: 'B', 5: 'A', 10: 'E'}
    assert analysis.fastest_within([r for r in rows if r['mse'] > 0.40], 1)[(720, 32)] == (0.40, None)

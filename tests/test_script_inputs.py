"""The benchmark and analysis scripts refuse bad input as run.py does: exit status 2 and one line on stderr
naming the flag, file or value. Those that build models from run.py flags (speedup.py, step_costs.py,
draft_vs_target.py) refuse it before any model is built or checkpoint loaded."""
import signal
import subprocess
import sys

import pytest

from conftest import ETT_ROOT, REPO_ROOT, cli_args, save_tiny

sys.path.insert(0, str(REPO_ROOT / 'scripts' / 'benchmarks'))
sys.path.insert(0, str(REPO_ROOT / 'scripts' / 'analysis'))
import draft_vs_target  # noqa: E402
import parse_sweep_results  # noqa: E402
import speculative_summary  # noqa: E402
import speedup  # noqa: E402
import step_costs  # noqa: E402

MODEL = dict(d_model=32, n_heads=2, d_ff=32, e_layers=2, seq_len=192, test_seq_len=192, input_token_len=96,
             output_token_len=96)
DATA = dict(root_path=ETT_ROOT, data_path='ETTh1.csv', num_workers=0)
TTM = dict(spec_draft_model='ttm', ttm_patches=2, hidden_dim=8, layers=1, mode='common_channel')


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp('ckpts')
    for name in ('timer_xl', 'timer_xl_draft'):
        save_tiny(folder / f'{name}.pth', name, **MODEL)
    (folder / 'a_file').write_text('')
    return folder


def checked(ckpts, **flags):
    """Flags that pass, with `flags` on top: the 1-layer tiny target and its draft on ETTh1."""
    return dict(target_ckpt=ckpts / 'timer_xl.pth', draft_ckpt=ckpts / 'timer_xl_draft.pth', **MODEL, **DATA) | flags


SPEEDUP = [
    ('missing target', dict(target_ckpt='/no/such.pth'), ('--target_ckpt /no/such.pth', 'not found')),
    ('target file holds the draft', dict(target_ckpt='{ckpts}/timer_xl_draft.pth'),
     ('--target_ckpt', 'holds a timer_xl_draft model', 'need a timer_xl model')),
    ('draft file holds the target', dict(draft_ckpt='{ckpts}/timer_xl.pth'), ('--draft_ckpt', 'holds a timer_xl model')),
    ('stochastic draft flag, point checkpoint', dict(draft_stochastic=True), ('--draft_ckpt', 'drop --draft_stochastic')),
    ('K 0', dict(ks='0'), ('--ks 0', '>= 1')),
    ('sigma 0', dict(sigmas='0'), ('--sigmas 0', '> 0')),
    ('horizon beyond the test split', dict(horizons='100000'), ('the longest --horizons 100000', 'test split')),
    ('a run.py flag the grid sets', dict(rollout='cached'), ('--rollout cached does nothing', 'both rollouts')),
    ('--spec_sigma next to --sigmas', dict(sigmas='0.3', spec_sigma=0.5), ('--spec_sigma 0.5 does nothing', '--sigmas')),
    ('cached rollout of flat positions', dict(rope_position='flat'), ('--rope_position flat', 'cached')),
    ('no such data file', dict(data_path='nope.csv'), ('--data_path nope.csv',)),
    ('no such device', dict(device='cuda:7'), ('--device cuda:7',)),
    ('output folder is a file', dict(out_dir='{ckpts}/a_file'), ('--out_dir', 'is a file')),
]
STEP_COSTS = [
    ('K beyond the one-call draft', dict(**TTM, ks='3'), ('the largest --ks 3', '2 patches')),
    ('a TTM flag without TTM', dict(ttm_patches=2), ('--ttm_patches 2 does nothing',)),
    ('batch size 0', dict(batch_sizes='0'), ('--batch_sizes 0', '>= 1')),
    ('a run.py flag the script sets', dict(spec_k=2), ('--spec_k 2 does nothing', '--ks')),
]
DRAFT_VS_TARGET = [
    ('missing draft', dict(draft_ckpt='/no/such.pth'), ('--draft_ckpt /no/such.pth', 'not found')),
    ('no batches', dict(max_batches=0), ('--max_batches 0', '>= 1')),
    ('a run.py flag the script sets', dict(test_pred_len=192), ('--test_pred_len 192 does nothing', '--horizons')),
]
CASES = ([(speedup, 'speedup', *case) for case in SPEEDUP] + [(step_costs, 'step_costs', *case) for case in STEP_COSTS]
         + [(draft_vs_target, 'draft_vs_target', *case) for case in DRAFT_VS_TARGET])


ANALYSIS = [
    (speculative_summary, ['--file', '/no/such.txt'], ('--file /no/such.txt', 'no such file')),
    (speculative_summary, ['--file', str(REPO_ROOT / 'README.md')], ('README.md holds no complete speculative record',)),
    (speculative_summary, ['--file', sys.executable], ('--file', 'not a summary written by run.py')),
    (speculative_summary, ['--last', '0'], ('--last 0', '>= 1')),
    (parse_sweep_results, ['/no/such/sweep'], ('/no/such/sweep: no such folder',)),
    (parse_sweep_results, ['--mse_budget', '-5', str(REPO_ROOT)], ('--mse_budget', "'-5'", '>= 0%')),
]


def assert_refused(script, argv, named, capsys):
    """script.main(argv) exits with status 2 and one line on stderr holding every fragment of named."""
    with pytest.raises(SystemExit) as exit_info:
        script.main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith('error: '), lines
    missing = [fragment for fragment in named if fragment not in lines[0]]
    assert not missing, f'{missing} not in: {lines[0]}'


def refuse_work(monkeypatch, script):
    def started(*_, **__):
        raise AssertionError('a model was built or a checkpoint loaded before the flags were checked')
    for name in ('model_from_flags', 'load_checkpoint'):
        monkeypatch.setattr(script, name, started, raising=False)


@pytest.mark.data
@pytest.mark.parametrize('script, flags, named', [(c[0], c[3], c[4]) for c in CASES],
                         ids=[f'{c[1]}: {c[2]}' for c in CASES])
def test_bad_input_is_one_line_and_exit_2(script, flags, named, ckpts, capsys, monkeypatch):
    flags = {k: v.format(ckpts=ckpts) if isinstance(v, str) else v for k, v in flags.items()}
    argv = cli_args(MODEL | flags if script is step_costs else checked(ckpts, **flags))
    refuse_work(monkeypatch, script)
    assert_refused(script, argv, named, capsys)


@pytest.mark.parametrize('script, argv, named', ANALYSIS,
                         ids=[f'{c[0].__name__}: {c[2][0]}' for c in ANALYSIS])
def test_analysis_scripts_bad_input(script, argv, named, capsys):
    assert_refused(script, argv, named, capsys)


@pytest.mark.data
def test_the_good_flags_pass(ckpts):
    """The flags the cases above start from are accepted (so each case is refused for its one mistake)."""
    bench, args = speedup.parse(cli_args(checked(ckpts, quick=True)))
    assert (bench.ks, args.spec_k) == ([1, 3], 3)
    own, args = draft_vs_target.parse(cli_args(checked(ckpts)))
    assert own.horizons == [96, 720]
    bench, args = step_costs.parse(cli_args(MODEL | dict(n_vars=2)))  # --n_vars sets the windows of any family
    assert args.n_vars == 2


def test_ks_beyond_the_horizons_patches_are_clipped(ckpts, capsys):
    bench, args = step_costs.parse(cli_args(MODEL) + ['--ks', '2', '1000'])
    assert bench.ks == [2, 8] and args.spec_k == 8  # step_costs forecasts 720 points: ceil(720 / 96) patches
    assert 'note: the largest --ks 1000 is more than the 8 patch(es)' in capsys.readouterr().out


@pytest.mark.data
def test_speedup_ks_beyond_the_longest_horizon_are_clipped(ckpts):
    bench, args = speedup.parse(cli_args(checked(ckpts, horizons=192)) + ['--ks', '1', '1000'])
    assert bench.ks == [1, 2] and args.spec_k == 2


@pytest.mark.slow
def test_ctrl_c_stops_a_benchmark_with_one_line_and_status_130():
    command = [sys.executable, '-u', str(REPO_ROOT / 'scripts' / 'benchmarks' / 'step_costs.py'), *cli_args(MODEL),
               '--batch_sizes', '256', '--ks', '1', '8']
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.startswith('|---'):  # the table has begun: the costs are being measured
                break
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130
    assert err.splitlines() == ['interrupted (Ctrl-C): the rows printed above are complete']

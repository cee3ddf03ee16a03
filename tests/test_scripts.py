"""The experiment scripts: syntax, that every run.py flag they use exists, the names of the seed README,
and what the training scripts run, with a stand-in python (FAKE_PY) that records the calls and "trains"
by creating the checkpoint file."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, SEED_README

SCRIPTS = sorted(REPO_ROOT.glob('scripts/**/*.sh'))
NOT_RUN_PY = {'nproc_per_node'}  # torchrun's


def run_py_flags():
    done = subprocess.run([sys.executable, 'run.py', '--help'], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return set(re.findall(r'--(\w+)', done.stdout))


def script_flags(path):
    """The --flags on the lines of a script that are not comments."""
    code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith('#')]
    return set(re.findall(r'(?<![\w-])--(\w+)', '\n'.join(code))) - NOT_RUN_PY


def speedup_flags():
    sys.path.insert(0, str(REPO_ROOT / 'scripts' / 'benchmarks'))
    from speedup import bench_parser
    return {option.lstrip('-') for action in bench_parser()._actions for option in action.option_strings}


def own_flags(script):
    """The flags of a Python script that the shell scripts call, from its --help."""
    done = subprocess.run([sys.executable, script, '--help'], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return set(re.findall(r'--(\w+)', done.stdout))


def test_every_script_parses_and_uses_only_run_py_flags():
    known = run_py_flags() | speedup_flags() | own_flags('scripts/analysis/cached_accuracy.py') | \
        own_flags('scripts/analysis/draft_vs_target.py')
    assert len(SCRIPTS) >= 37
    for path in SCRIPTS:
        done = subprocess.run(['bash', '-n', str(path)], capture_output=True, text=True)
        assert done.returncode == 0, f'{path}: {done.stderr}'
        unknown = script_flags(path) - known
        assert not unknown, f'{path.relative_to(REPO_ROOT)} uses flags run.py does not have: {sorted(unknown)}'
        assert path.name == 'lib.sh' or os.access(path, os.X_OK), path
    assert len(REPO_ROOT.joinpath('scripts/lib.sh').read_text().splitlines()) < 100


def test_flag_check_finds_a_flag_run_py_lacks(tmp_path):
    script = tmp_path / 'x.sh'
    script.write_text('# --in_a_comment\nrun_py --seq_len 672 --no_such_flag 1 \\\n  --use_norm\n')
    assert script_flags(script) - run_py_flags() == {'no_such_flag'}


@pytest.mark.data
def test_seed_readme_scripts_exist():
    text = SEED_README.read_text()
    paths = set(re.findall(r'scripts/[\w./-]+\.sh', text))
    names = set(re.findall(r'[\w.-]+\.sh', text))
    assert len(paths) > 5 and len(names) > 20
    assert not [p for p in paths if not (REPO_ROOT / p).is_file()]
    assert not names - {p.name for p in SCRIPTS}


# Stand-in for the project python: records each call; `-m cli.paths` answers checkpoints/<--model_id>/checkpoint.pth (a unique
# folder name per stage here); fetching does nothing; a training run (is_training 1) creates
# checkpoints/<model_id>/checkpoint.pth, as run.py would at its setting.
FAKE_PY = r'''#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_PY_LOG"
model_id() { local id=""; while [ $# -gt 0 ]; do if [ "$1" = --model_id ]; then id=$2; fi; shift; done; echo "$id"; }
case "$1 $2" in
  "-m cli.paths") shift 2; echo "checkpoints/$(model_id "$@")/checkpoint.pth"; exit 0 ;;
  "-m data_provider.fetch") exit 0 ;;
esac
while [ $# -gt 0 ] && [ "$1" != run.py ]; do shift; done
shift
training=0; prev=""
for a in "$@"; do if [ "$prev" = --is_training ]; then training=$a; fi; prev=$a; done
if [ "$training" = 1 ]; then d="checkpoints/$(model_id "$@")"; mkdir -p "$d"; touch "$d/checkpoint.pth"; fi
'''


class FakeRepo:
    """A copy of scripts/ run with FAKE_PY; `run(script, *args)` returns (stdout, the run.py calls as
    (launcher, flags), launcher 'python' or 'torchrun:<n>')."""

    def __init__(self, root):
        self.root = root
        shutil.copytree(REPO_ROOT / 'scripts', root / 'scripts')
        self.python = root / 'fake_python'
        self.python.write_text(FAKE_PY)
        self.python.chmod(0o755)
        self.log = root / 'calls.log'

    def run(self, script, *args, **env):
        self.log.write_text('')
        full_env = {k: v for k, v in os.environ.items() if k not in ('EXTRA_ARGS', 'TRAIN')}
        full_env.update(PY=str(self.python), FAKE_PY_LOG=str(self.log), **env)
        done = subprocess.run(['bash', script, *args], cwd=self.root, env=full_env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        calls = [line.split() for line in self.log.read_text().splitlines()]
        runs = [('python', c[2:]) for c in calls if c[:2] == ['-u', 'run.py']]
        runs += [(f'torchrun:{c[3]}', c[6:]) for c in calls if c[:2] == ['-m', 'torch.distributed.run']]
        return done.stdout, runs


def flag(flags, name):
    values = [flags[i + 1] for i, f in enumerate(flags[:-1]) if f == name]
    assert values, f'{name} missing from {flags}'
    return values[-1]


def sizes(flags):
    return tuple(flag(flags, f'--{name}') for name in ('d_model', 'n_heads', 'd_ff', 'e_layers'))


DISTILL = 'scripts/distillation/updated_distillation/{0}_timer_xl_draft_from_target_{0}_stochastic.sh'
ETT, L8 = ('1024', '8', '2048', '1'), ('1024', '8', '2048', '8')


@pytest.mark.parametrize('data, model_id, target_sizes, pretrained_id', [
    ('etth1', 'ETTh1', ETT, 'draft_pretrain_Weather_025x'),
    ('etth1_8l', 'ETTh1_8l', L8, 'draft_pretrain_weather_8l_025x'),
])
def test_distill_script_makes_target_and_draft_first_then_distils(tmp_path, data, model_id, target_sizes,
                                                                  pretrained_id):
    repo = FakeRepo(tmp_path)
    stdout, runs = repo.run(DISTILL.format(data), '2', EXTRA_ARGS='--subset_rand_ratio 0.1')
    (l0, train), *tests, (l1, pretrain), (l2, distill) = runs
    # 1. the target, by its own script (trained, then tested at four horizons)
    assert l0 == 'python' and flag(train, '--model_id') == model_id and sizes(train) == target_sizes
    assert [flag(t, '--test_pred_len') for _, t in tests] == ['96', '192', '336', '720']
    # 2. the pretrained draft of the same family, by its script, with the GPUs given
    assert l1 == l2 == 'torchrun:2' and flag(pretrain, '--model_id') == pretrained_id
    assert sizes(pretrain) == target_sizes and flag(pretrain, '--draft_scale_e_layers') == '0.25'
    # 3. distillation from both
    assert flag(distill, '--model_id') == f'{model_id}_draft_distill_stochastic_from_target_{model_id}'
    assert flag(distill, '--distill_target_ckpt') == f'checkpoints/{model_id}/checkpoint.pth'
    assert flag(distill, '--pretrain_model_path') == f'checkpoints/{pretrained_id}/checkpoint.pth'
    assert sizes(distill) == target_sizes and flag(distill, '--learning_rate') == '5e-5'
    assert all(f[-2:] == ['--subset_rand_ratio', '0.1'] for _, f in runs)  # EXTRA_ARGS reaches every call
    # Everything exists now: nothing runs again; TRAIN=1 re-distils only.
    assert repo.run(DISTILL.format(data))[1] == []
    (_, again), = repo.run(DISTILL.format(data), TRAIN='1')[1]
    assert flag(again, '--model_id') == flag(distill, '--model_id')
    # A distillation stopped after an epoch (its resume.pth is there) is run again: it resumes.
    (tmp_path / 'checkpoints' / flag(distill, '--model_id') / 'resume.pth').touch()
    (_, resumed), = repo.run(DISTILL.format(data))[1]
    assert resumed == distill[:-2]  # the same flags, without this run's EXTRA_ARGS


def test_spec_test_script_makes_what_is_missing_then_compares(tmp_path):
    repo = FakeRepo(tmp_path)
    script = 'scripts/supervised/rolling_forecast/spec_decoding_tests/test_ettm1_timer_vs_spec_025x_stochastic.sh'
    _, runs = repo.run(script, EXTRA_ARGS='--spec_k 2')
    baseline, speculative = runs[-2][1], runs[-1][1]
    assert [flag(f, '--model_id') for _, f in runs[:-2] if flag(f, '--is_training') == '1'] == [
        'ETTm1', 'draft_pretrain_Weather_025x', 'ETTm1_draft_distill_stochastic_from_target_ETTm1']
    assert '--use_speculative' not in baseline and flag(baseline, '--test_dir') == 'ETTm1'
    assert flag(speculative, '--spec_draft_ckpt') == 'checkpoints/ETTm1_draft_distill_stochastic_from_target_ETTm1/' \
                                                     'checkpoint.pth'
    assert flag(speculative, '--spec_k') == '2'  # EXTRA_ARGS comes last and wins
    assert len(repo.run(script)[1]) == 2  # the second time only the two tests run


def test_make_if_missing_fails_when_the_script_does_not_make_the_checkpoint(tmp_path):
    repo = FakeRepo(tmp_path)
    (tmp_path / 'noop.sh').write_text('true\n')
    done = subprocess.run(['bash', '-c', 'source scripts/lib.sh; make_if_missing checkpoints/x.pth noop.sh'],
                          cwd=tmp_path, env={**os.environ, 'PY': str(repo.python)}, capture_output=True, text=True)
    assert done.returncode == 1 and 'noop.sh did not write checkpoints/x.pth' in done.stderr


def command_flags(path, start):
    """The run.py flags of a script's command that begins with `start`: a bash array `NAME=(` ... `)`
    or a command continued with backslashes."""
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    words, i = lines[first][len(start):], first
    while not (lines[i].endswith(')') if start.endswith('(') else not lines[i].endswith('\\')):
        i += 1
        words += ' ' + lines[i]
    return [w for w in words.replace('\\', ' ').rstrip(')').split() if w.startswith('--') or not w.startswith(('"', '$'))]


@pytest.mark.parametrize('script, start, model, expected', [
    # model.md section 5: 8 layers of 8,399,888 + embedding, head and final norm
    ('scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh', 'FLAGS=(', 'timer_xl', 67_398_880),
    # 256/2/512/2: 2 x 527,108 + (96*256 + 256) + (256*96 + 96) + 2*256
    ('scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_8l_025x.sh', 'train "${1:-1}"',
     'timer_xl_draft', 1_104_232),
])
def test_8_layer_scripts_build_the_published_sizes(script, start, model, expected):
    import torch

    from models import model_from_flags
    from utils.flags import build_parser, fill_defaults
    args = fill_defaults(build_parser().parse_args(command_flags(REPO_ROOT / script, start)))
    assert args.model == model
    with torch.device('meta'):
        assert sum(p.numel() for p in model_from_flags(model, args).parameters()) == expected


SPEC_TESTS = 'scripts/supervised/rolling_forecast/spec_decoding_tests/'
DRAFT_IDS = {'timer_xl_draft': 'ETTh1_draft_distill_stochastic_from_target_ETTh1',
             'timer_draft': 'ETTh1_timer_draft_distill_from_target_ETTh1',
             'ttm': 'ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1'}


def one_real_setting(repo, runs, model_id):
    """The flag lists that name model_id's checkpoint folder (its training call and every settings query)
    give one real setting string; returns the training call's flags."""
    from utils.flags import parse_flags
    from cli.paths import make_setting
    calls = [line.split() for line in repo.log.read_text().splitlines()]
    queries = [c[2:] for c in calls if c[:2] == ['-m', 'cli.paths'] and flag(c, '--model_id') == model_id]
    (_, trained), = [(l, f) for l, f in runs if flag(f, '--model_id') == model_id]
    assert len(queries) >= 2
    assert len({make_setting(parse_flags(flags), 0) for flags in queries + [trained]}) == 1
    return trained


@pytest.mark.parametrize('script, family', [
    ('test_etth1_timer_vs_spec_025x_stochastic.sh', 'timer_xl_draft'),
    ('test_etth1_timer_xl_vs_ttm_spec.sh', 'ttm'),
    ('test_etth1_timer_xl_vs_timer_draft_spec.sh', 'timer_draft'),
])
def test_spec_script_reads_the_checkpoint_its_distillation_script_writes(tmp_path, script, family):
    from utils.flags import parse_flags
    repo = FakeRepo(tmp_path)
    _, runs = repo.run(SPEC_TESTS + script)
    trained = one_real_setting(repo, runs, DRAFT_IDS[family])
    speculative = runs[-1][1]
    assert flag(speculative, '--spec_draft_ckpt') == f'checkpoints/{DRAFT_IDS[family]}/checkpoint.pth'
    assert parse_flags(speculative).spec_draft_model == flag(trained, '--model') == family


@pytest.mark.parametrize('script, target_id, e_layers', [('draft_families_etth1.sh', 'ETTh1', '1'),
                                                           ('draft_families_etth1_8l.sh', 'ETTh1_8l', '8')])
def test_family_benchmark_times_each_distilled_draft(tmp_path, script, target_id, e_layers):
    repo = FakeRepo(tmp_path)
    _, runs = repo.run(f'scripts/benchmarks/{script}', BENCH_ARGS='--quick')
    calls = [line.split() for line in repo.log.read_text().splitlines()]
    benches = [c[1:] for c in calls if c[0] == 'scripts/benchmarks/speedup.py']
    assert [flag(b, '--spec_draft_model') for b in benches] == list(DRAFT_IDS)
    for bench, (family, model_id) in zip(benches, DRAFT_IDS.items()):
        model_id = model_id.replace('ETTh1', target_id)
        trained = one_real_setting(repo, runs, model_id)
        assert flag(trained, '--distill_target_ckpt') == f'checkpoints/{target_id}/checkpoint.pth'
        assert flag(trained, '--e_layers') == flag(bench, '--e_layers') == e_layers
        assert flag(bench, '--draft_ckpt') == f'checkpoints/{model_id}/checkpoint.pth'
        assert flag(bench, '--target_ckpt') == f'checkpoints/{target_id}/checkpoint.pth'
        assert ('--draft_stochastic' in bench) == (family != 'timer_draft') and bench[-1] == '--quick'

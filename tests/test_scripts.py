"""The experiment scripts and their flag files: syntax, that every run.py flag they use exists, the names of the
seed README, that an artifact's flag files are read alike by the script that trains it and by those that use it,
and what the scripts run, with a stand-in python (FAKE_PY) that records the calls and "trains" by creating the
checkpoint file."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli.parser import parse_flags
from conftest import REPO_ROOT, SEED_README
from models import model_from_flags, n_parameters

SCRIPTS = sorted(REPO_ROOT.glob('scripts/**/*.sh'))
FLAG_FILES = sorted(REPO_ROOT.glob('scripts/flags/*.flags'))
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


def flag_file_problems(path, known):
    """The lines of a flag file that are not one run.py flag (with at most one value); `#` starts a comment."""
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split('#')[0].split()
        if words and not (re.fullmatch(r'--(\w+)', words[0]) and words[0][2:] in known and len(words) <= 2):
            problems.append(f'{path.name}:{number}: {line}')
    return problems


def test_every_flag_file_holds_one_run_py_flag_per_line():
    known = run_py_flags()
    assert len(FLAG_FILES) >= 30
    for path in FLAG_FILES:
        assert not flag_file_problems(path, known)


def test_flag_file_check_finds_a_line_that_is_not_one_run_py_flag(tmp_path):
    flags = tmp_path / 'x.flags'
    flags.write_text('# a comment\n--seq_len 672  # windows\n\n--use_norm\n--no_such_flag 1\n--seq_len 672 --use_norm\n')
    assert flag_file_problems(flags, run_py_flags()) == ['x.flags:5: --no_such_flag 1',
                                                          'x.flags:6: --seq_len 672 --use_norm']


def bash(command, cwd=REPO_ROOT, **env):
    return subprocess.run(['bash', '-c', f'source scripts/lib.sh; {command}'], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, 'PY': sys.executable, **env})


def read_flags(*files):
    """The words lib.sh's read_flags reads from these flag files."""
    done = bash(f'read_flags FLAGS {" ".join(map(str, files))}; printf "%s\\n" "${{FLAGS[@]}}"')
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_read_flags_reads_the_files_in_order_and_rejects_what_is_not_one_flag(tmp_path):
    (tmp_path / 'a.flags').write_text('# data\n--seq_len 672  # 7 tokens\n\n--use_norm\n')
    (tmp_path / 'b.flags').write_text('--seq_len 96\n--root_path ./dataset/ETT-small/')  # no newline at the end
    assert read_flags(tmp_path / 'a.flags', tmp_path / 'b.flags') == [
        '--seq_len', '672', '--use_norm', '--seq_len', '96', '--root_path', './dataset/ETT-small/']
    (tmp_path / 'c.flags').write_text('--seq_len 672 --use_norm\n')
    for bad, message in (('c.flags', "c.flags: '--seq_len 672 --use_norm' is not one run.py flag"),
                         ('none.flags', 'no flag file')):
        done = bash(f'set -e; read_flags FLAGS {tmp_path / bad}; echo read')
        assert done.returncode == 2 and done.stdout == '' and message in done.stderr
        assert len(done.stderr.splitlines()) == 1 and bad in done.stderr


def test_checkpoint_of_honours_checkpoints(tmp_path):
    from cli.paths import make_setting
    from cli.parser import parse_flags
    files = 'scripts/flags/etth1_data.flags scripts/flags/etth1_target.flags'
    done = bash(f'read_flags TARGET {files}; checkpoint_of "${{TARGET[@]}}" --checkpoints {tmp_path}/ckpts/; '
                f'setting_of "${{TARGET[@]}}"', EXTRA_ARGS='--train_epochs 1')
    assert done.returncode == 0, done.stderr
    path, setting = done.stdout.splitlines()
    assert path == f'{tmp_path}/ckpts/{setting}/checkpoint.pth'
    assert setting == make_setting(parse_flags(read_flags(*files.split())), 0)


def flag_file_reads():
    """(script, array name, [flag file names]) of every `read_flags NAME FILE...` line of the scripts."""
    return [(path.relative_to(REPO_ROOT), name, [Path(f).name for f in files.split()])
            for path in SCRIPTS
            for name, files in re.findall(r'^\s*read_flags (\w+) (.+)$', path.read_text(), re.M)]


def trained_artifacts(reads):
    """The flag files of the artifacts the scripts train: the last file of an array passed to `train`."""
    return {files[-1] for script, name, files in reads
            if re.search(rf'\btrain \S+ "\$\{{{name}\[@\]\}}"', (REPO_ROOT / script).read_text())}


def read_differently(reads, artifacts):
    """The artifacts that some script reads with other flag files (or in another order) than another does."""
    ways = {}
    for script, _, files in reads:
        if files[-1] in artifacts:
            ways.setdefault(files[-1], set()).add(tuple(files))
    return {artifact: sorted(found) for artifact, found in ways.items() if len(found) > 1}


def test_every_artifact_is_read_alike_by_the_script_that_trains_it_and_those_that_use_it():
    reads = flag_file_reads()
    artifacts = trained_artifacts(reads)
    assert {'etth1_target.flags', 'etth1_draft_025x.flags', 'draft_pretrain_weather_025x.flags'} <= artifacts
    assert len(artifacts) == len(FLAG_FILES) - 8  # all but the 7 datasets' data and the TTM sizes
    assert read_differently(reads, artifacts) == {}
    assert {f for _, _, files in reads for f in files} == {path.name for path in FLAG_FILES}  # none unread
    # An artifact's name is written in its flag file only (the quickstart's small ones live in its own folder).
    assert [p.name for p in SCRIPTS if '--model_id' in p.read_text()] == ['quickstart.sh']


def test_every_artifact_has_a_checkpoint_of_its_own():
    from cli.paths import checkpoint_path
    from cli.parser import parse_flags
    reads = flag_file_reads()
    artifacts = {tuple(files) for _, _, files in reads if files[-1] in trained_artifacts(reads)}
    paths = {checkpoint_path(parse_flags(read_flags(*(f'scripts/flags/{name}' for name in files))))
             for files in artifacts}
    assert len(paths) == len(artifacts) == len(FLAG_FILES) - 8


def test_a_user_reading_an_artifact_without_its_data_is_found():
    reads = [('a.sh', 'TARGET', ['etth1_data.flags', 'etth1_target.flags']), ('b.sh', 'TARGET', ['etth1_target.flags'])]
    assert read_differently(reads, {'etth1_target.flags'}) == {
        'etth1_target.flags': [('etth1_data.flags', 'etth1_target.flags'), ('etth1_target.flags',)]}


@pytest.mark.data
def test_seed_readme_scripts_exist():
    text = SEED_README.read_text()
    paths = set(re.findall(r'scripts/[\w./-]+\.sh', text))
    names = set(re.findall(r'[\w.-]+\.sh', text))
    assert len(paths) > 5 and len(names) > 20
    assert not [p for p in paths if not (REPO_ROOT / p).is_file()]
    assert not names - {p.name for p in SCRIPTS}


# Stand-in for the project python: records each call; `-m cli.paths` answers <--checkpoints>/<--model_id>_<--model>/
# checkpoint.pth (a folder per model here, as the setting is in run.py); fetching does nothing; a training run
# (is_training 1) creates that checkpoint.pth.
FAKE_PY = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_PY_LOG"
folder() {
  local root=checkpoints id="" model=""
  while [ $# -gt 0 ]; do
    case "$1" in --checkpoints) root=${2%/} ;; --model_id) id=$2 ;; --model) model=$2 ;; esac
    shift
  done
  echo "$root/${id}_$model"
}
case "$1 $2" in
  "-m cli.paths") shift 2; echo "$(folder "$@")/checkpoint.pth"; exit 0 ;;
  "-m data_provider.fetch") exit 0 ;;
esac
while [ $# -gt 0 ] && [ "$1" != run.py ]; do shift; done
shift
training=0; prev=""
for a in "$@"; do if [ "$prev" = --is_training ]; then training=$a; fi; prev=$a; done
if [ "$training" = 1 ]; then mkdir -p "$(folder "$@")"; touch "$(folder "$@")/checkpoint.pth"; fi
"""


def fake_checkpoint(model_id, model):
    return f'checkpoints/{model_id}_{model}/checkpoint.pth'


class FakeRepo:
    """A copy of scripts/ run with FAKE_PY; `run(script, *args)` returns (stdout, the run.py calls as
    (launcher, flags), launcher 'python' or 'torchrun:<n>'); `queries()` the flags of the checkpoint queries."""

    def __init__(self, root):
        self.root = root
        shutil.copytree(REPO_ROOT / 'scripts', root / 'scripts')
        self.python = root / 'fake_python'
        self.python.write_text(FAKE_PY)
        self.python.chmod(0o755)
        self.log = root / 'calls.log'

    def calls(self):
        return [line.split() for line in self.log.read_text().splitlines()]

    def run(self, script, *args, **env):
        self.log.write_text('')
        full_env = {k: v for k, v in os.environ.items() if k not in ('EXTRA_ARGS', 'TRAIN')}
        full_env.update(PY=str(self.python), FAKE_PY_LOG=str(self.log), **env)
        done = subprocess.run(['bash', script, *args], cwd=self.root, env=full_env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        runs = [('python', c[2:]) for c in self.calls() if c[:2] == ['-u', 'run.py']]
        runs += [(f'torchrun:{c[3]}', c[6:]) for c in self.calls() if c[:2] == ['-m', 'torch.distributed.run']]
        return done.stdout, runs

    def queries(self):
        return [c[2:] for c in self.calls() if c[:2] == ['-m', 'cli.paths']]


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
    distilled_id = f'{model_id}_draft_distill_stochastic_from_target_{model_id}'
    assert flag(distill, '--model_id') == distilled_id
    assert flag(distill, '--distill_target_ckpt') == fake_checkpoint(model_id, 'timer_xl')
    assert flag(distill, '--pretrain_model_path') == fake_checkpoint(pretrained_id, 'timer_xl_draft')
    assert sizes(distill) == target_sizes and flag(distill, '--learning_rate') == '5e-5'
    assert all(f[-2:] == ['--subset_rand_ratio', '0.1'] for _, f in runs)  # EXTRA_ARGS reaches every call
    # Everything exists now: nothing runs again; TRAIN=1 re-distils only.
    assert repo.run(DISTILL.format(data))[1] == []
    (_, again), = repo.run(DISTILL.format(data), TRAIN='1')[1]
    assert flag(again, '--model_id') == distilled_id
    # A distillation stopped after an epoch (its resume.pth is there) is run again: it resumes.
    (tmp_path / fake_checkpoint(distilled_id, 'timer_xl_draft')).with_name('resume.pth').touch()
    (_, resumed), = repo.run(DISTILL.format(data))[1]
    assert resumed == distill[:-2]  # the same flags, without this run's EXTRA_ARGS


def test_spec_test_script_makes_what_is_missing_then_compares(tmp_path):
    repo = FakeRepo(tmp_path)
    script = 'scripts/supervised/rolling_forecast/spec_decoding_tests/test_ettm1_timer_vs_spec_025x_stochastic.sh'
    _, runs = repo.run(script, EXTRA_ARGS='--spec_k 2')
    baseline, speculative = runs[-2][1], runs[-1][1]
    draft_id = 'ETTm1_draft_distill_stochastic_from_target_ETTm1'
    assert [flag(f, '--model_id') for _, f in runs[:-2] if flag(f, '--is_training') == '1'] == [
        'ETTm1', 'draft_pretrain_Weather_025x', draft_id]
    assert '--use_speculative' not in baseline and flag(baseline, '--test_dir') == 'ETTm1_timer_xl'
    assert flag(speculative, '--spec_draft_ckpt') == fake_checkpoint(draft_id, 'timer_xl_draft')
    assert flag(speculative, '--spec_k') == '2'  # EXTRA_ARGS comes last and wins
    assert len(repo.run(script)[1]) == 2  # the second time only the two tests run


def test_make_if_missing_fails_when_the_script_does_not_make_the_checkpoint(tmp_path):
    repo = FakeRepo(tmp_path)
    (tmp_path / 'noop.sh').write_text('true\n')
    done = bash('make_if_missing checkpoints/x.pth noop.sh', cwd=tmp_path, PY=str(repo.python))
    assert done.returncode == 1 and 'noop.sh did not write checkpoints/x.pth' in done.stderr


@pytest.mark.parametrize('files, model, expected', [
    # model.md section 5: 8 layers of 8,399,888 + embedding, head and final norm
    (('etth1_data', 'etth1_8l_target'), 'timer_xl', 67_398_880),
    # 256/2/512/2: 2 x 527,108 + (96*256 + 256) + (256*96 + 96) + 2*256
    (('draft_pretrain_weather_8l_025x',), 'timer_xl_draft', 1_104_232),
])
def test_8_layer_artifacts_build_the_published_sizes(files, model, expected):
    args = parse_flags(read_flags(*(f'scripts/flags/{name}.flags' for name in files)))
    assert args.model == model
    with torch.device('meta'):
        assert n_parameters(model_from_flags(model, args)) == expected


CONSUMERS = [str(p.relative_to(REPO_ROOT)) for p in SCRIPTS if p.name != 'lib.sh' and 'make_if_missing' in p.read_text()]


@pytest.mark.parametrize('script', CONSUMERS)
def test_every_checkpoint_a_script_asks_for_is_the_one_its_producer_trains(tmp_path, script):
    """From nothing, a script has what it uses made by the producers' scripts; each checkpoint query names the
    real setting of the training call of that model."""
    from cli.paths import make_setting
    from cli.parser import parse_flags

    def model(flags):
        return flag(flags, '--model_id'), flag(flags, '--model')

    repo = FakeRepo(tmp_path)
    _, runs = repo.run(script)
    trainings = [flags for _, flags in runs if flag(flags, '--is_training') == '1']
    trained = {model(flags): make_setting(parse_flags(flags), 0) for flags in trainings}
    assert len(trained) == len(trainings) >= 2
    queried = {(model(flags), make_setting(parse_flags(flags), 0)) for flags in repo.queries()}
    assert queried == set(trained.items())


SPEC_TESTS = 'scripts/supervised/rolling_forecast/spec_decoding_tests/'
DRAFT_IDS = {'timer_xl_draft': 'ETTh1_draft_distill_stochastic_from_target_ETTh1',
             'timer_draft': 'ETTh1_timer_draft_distill_from_target_ETTh1',
             'ttm': 'ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1'}


@pytest.mark.parametrize('script, family', [
    ('test_etth1_timer_vs_spec_025x_stochastic.sh', 'timer_xl_draft'),
    ('test_etth1_timer_xl_vs_ttm_spec.sh', 'ttm'),
    ('test_etth1_timer_xl_vs_timer_draft_spec.sh', 'timer_draft'),
])
def test_spec_script_builds_the_draft_family_its_distillation_script_trains(tmp_path, script, family):
    from cli.parser import parse_flags
    repo = FakeRepo(tmp_path)
    _, runs = repo.run(SPEC_TESTS + script)
    speculative = runs[-1][1]
    assert flag(speculative, '--spec_draft_ckpt') == fake_checkpoint(DRAFT_IDS[family], family)
    assert parse_flags(speculative).spec_draft_model == family


@pytest.mark.parametrize('script, target_id, e_layers', [('draft_families_etth1.sh', 'ETTh1', '1'),
                                                           ('draft_families_etth1_8l.sh', 'ETTh1_8l', '8')])
def test_family_benchmark_times_each_distilled_draft(tmp_path, script, target_id, e_layers):
    repo = FakeRepo(tmp_path)
    _, runs = repo.run(f'scripts/benchmarks/{script}', BENCH_ARGS='--quick')
    benches = [c[1:] for c in repo.calls() if c[0] == 'scripts/benchmarks/speedup.py']
    assert [flag(b, '--spec_draft_model') for b in benches] == list(DRAFT_IDS)
    for bench, (family, model_id) in zip(benches, DRAFT_IDS.items()):
        model_id = model_id.replace('ETTh1', target_id)
        (_, trained), = [(l, f) for l, f in runs if flag(f, '--model_id') == model_id]
        assert flag(trained, '--distill_target_ckpt') == fake_checkpoint(target_id, 'timer_xl')
        assert flag(trained, '--e_layers') == flag(bench, '--e_layers') == e_layers
        assert flag(bench, '--draft_ckpt') == fake_checkpoint(model_id, family)
        assert flag(bench, '--target_ckpt') == fake_checkpoint(target_id, 'timer_xl')
        assert ('--draft_stochastic' in bench) == (family != 'timer_draft') and bench[-1] == '--quick'

"""A tiny end-to-end run of the whole workflow on the synthetic toy.csv (pretrain a draft, train a target,
distil a stochastic draft into it, test it alone and speculatively in both rollouts and both acceptance
modes, within an MSE budget) and the fingerprint of everything it writes that does not depend on the clock:
checkpoint weights, manifests, accuracy and acceptance records, the debug CSV, the calibration's measurements.

    python tests/e2e_workflow.py > tests/golden/e2e_outputs.json

records the fingerprint of the code as it is; tests/test_outputs_unchanged.py checks that a change of the code
keeps it."""
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import cli_args, write_csv  # noqa: E402

SIZES = dict(d_model=32, n_heads=4, d_ff=64, e_layers=2, seq_len=48, input_token_len=24, output_token_len=24,
             test_seq_len=48, test_pred_len=24, num_workers=0, data='MultivariateDatasetBenchmark', data_path='toy.csv',
             use_norm=True, seed=7)
TRAIN = dict(is_training=1, train_epochs=1, batch_size=32, learning_rate=0.001)
DRAFT = dict(model='timer_xl_draft', draft_scale_e_layers=0.5)
CLOCK_FIELDS = ('time', '_s', 'speedup', 'cost', 'c_', 'v_', 'per_batch', 'calls_per', 'repeats', 'check',
                'fallback', 'calib_predicted')


def steps(root):
    """(name, run.py flags) of the workflow, in order."""
    common = dict(SIZES, root_path=str(root), checkpoints=str(root / 'checkpoints'))
    pretrain = dict(common, **TRAIN, **DRAFT, task_name='pretrain', model_id='draft')
    target = dict(common, **TRAIN, task_name='forecast', model='timer_xl', model_id='target')
    yield 'pretrain', pretrain
    yield 'target', target
    distill = dict(common, **TRAIN, **DRAFT, task_name='forecast', model_id='distilled', draft_stochastic=True,
                   distill=True, distill_target_model='timer_xl', distill_target_ckpt=checkpoint(target),
                   distill_rollout_patches=2, distill_vali='teacher', adaptation=True,
                   pretrain_model_path=checkpoint(pretrain))
    yield 'distill', distill
    test = dict(common, task_name='forecast', model='timer_xl', model_id='target', is_training=0,
                test_dir=os.path.basename(os.path.dirname(checkpoint(target))), test_pred_len=72, batch_size=8)
    yield 'test_sliding', test
    yield 'test_cached', dict(test, rollout='cached')
    spec = dict(test, use_speculative=True, spec_draft_ckpt=checkpoint(distill), spec_draft_model='timer_xl_draft',
                draft_scale_e_layers=0.5, draft_stochastic=True, spec_k=2, spec_compare_baseline=True)
    yield 'spec_tolerance_cached', dict(spec, rollout='cached', spec_sigma=0.5)
    yield 'spec_lossless_sliding', dict(spec, spec_accept_mode='lossless', spec_sigma=1.0, target_sample=True,
                                        spec_debug_accept=True, spec_debug_out='debug.csv')
    yield 'spec_budget', dict(spec, rollout='cached', batch_size=1, test_pred_len=48, test_max_batches=4, spec_mse_budget=5,
                              spec_calib_windows=4, spec_calib_sigmas=[0.5, 1.0])


def checkpoint(flags):
    from cli.parser import parse_flags
    from cli.paths import checkpoint_path
    return checkpoint_path(parse_flags(cli_args(flags)))


def weights(path):
    state = torch.load(path, map_location='cpu', weights_only=True)
    return {name: [round(float(t.double().sum()), 6), round(float(t.double().norm()), 6)]
            for name, t in sorted(state.items())}


def records(path):
    from utils.records import parse_summary
    if not os.path.exists(path):
        return []
    return [{k: v for k, v in r.items() if k != 'setting' and not any(c in k for c in CLOCK_FIELDS)}
            for r in parse_summary(path) if 'spec_mse_budget' not in r]  # its choice weighs measured speeds


def run_workflow(root):
    """The fingerprint of a workflow run in the empty folder root."""
    import run
    write_csv(root / 'toy.csv', rows=600)
    found = {}
    for name, flags in steps(root):
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
                run.main(cli_args(flags))
        except SystemExit as stopped:
            raise RuntimeError(f"step {name} stopped ({stopped.code}): {stderr.getvalue()[-500:]}") from None
        if flags.get('is_training'):
            path = checkpoint(flags)
            manifest = json.loads(Path(path).with_name('manifest.json').read_text())
            found[name] = {'weights': weights(path),
                           'manifest': {k: v for k, v in manifest.items() if 'ckpt' not in k and 'path' not in k
                                        and k != 'checkpoints'}}
    found['forecast_records'] = (root / 'result_long_term_forecast.txt').read_text().replace(str(root), '.')
    found['summary_records'] = records(root / 'result_inference_summary.txt')
    with open(root / 'debug.csv', newline='') as f:
        found['debug_csv'] = [{k: v for k, v in row.items() if not any(c in k for c in CLOCK_FIELDS)}
                              for row in csv.DictReader(f)]
    calibration = json.loads(next((root / 'checkpoints').rglob('calibration-*.json')).read_text())
    found['calibration'] = [{k: v for k, v in s.items() if not any(c in k for c in CLOCK_FIELDS)}
                            for s in calibration['settings'] if s['k'] != 'adaptive']  # adaptive K weighs step costs
    return found


def fingerprint():
    torch.set_num_threads(1)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            return run_workflow(Path(tmp))
        finally:
            os.chdir(cwd)


if __name__ == '__main__':
    print(json.dumps(fingerprint(), indent=1, sort_keys=True))

"""scripts/benchmarks/speedup.py --quick on tiny random models: one CSV row per candidate and grid
point, with speedups that are the ratios of the timed columns."""
import csv
import sys

import pytest
import torch

from conftest import REPO_ROOT, cli_args, make_args
from models import build_model
from utils.checkpoint import save_checkpoint

sys.path.insert(0, str(REPO_ROOT / 'scripts' / 'benchmarks'))
import speedup  # noqa: E402

ETT_ROOT = REPO_ROOT.parent / 'shared' / 'datasets' / 'ETT-small'
MODEL = dict(d_model=32, n_heads=2, d_ff=32, e_layers=2, seq_len=192, test_seq_len=192, input_token_len=96,
             output_token_len=96)


TTM = dict(spec_draft_model='ttm', ttm_patches=3, hidden_dim=8, layers=1, mode='common_channel')


@pytest.mark.parametrize('draft', [{}, TTM], ids=['timer_xl_draft', 'ttm_one_call'])
def test_quick_benchmark_rows_and_ratios(tmp_path, draft):
    draft_model = draft.get('spec_draft_model', 'timer_xl_draft')
    for name, path in (('timer_xl', 'target.pth'), (draft_model, 'draft.pth')):
        torch.manual_seed(0)
        save_checkpoint(build_model(name, make_args(model=name, **MODEL, **draft)), str(tmp_path / path))
    flags = dict(target_ckpt=tmp_path / 'target.pth', draft_ckpt=tmp_path / 'draft.pth', quick=True,
                 out_dir=tmp_path / 'out', root_path=ETT_ROOT, data_path='ETTh1.csv', num_workers=0,
                 spec_sigma=0.7, **MODEL, **draft)
    speedup.main(cli_args(flags))
    with open(tmp_path / 'out' / 'speedup.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    candidates = {'target_sliding', 'target_cached', 'target_cached_frozen'} | {f'spec_{r}_{k}' for r in ('sliding', 'cached')
                                                        for k in ('s0.7_k1', 's0.7_k3', 's0.7_kadaptive')}
    points = {(r['batch_size'], r['horizon']) for r in rows}
    assert points == {('1', '720'), ('8', '720')}
    for point in points:
        at = {r['candidate']: r for r in rows if (r['batch_size'], r['horizon']) == point}
        assert set(at) == candidates and len(at) == sum((r['batch_size'], r['horizon']) == point for r in rows)
        for r in at.values():
            seconds = float(r['per_batch_s'])
            for column, base in (('speedup_vs_sliding', 'target_sliding'), ('speedup_vs_cached', 'target_cached'),
                                 ('speedup_same_rollout', f"target_{r['rollout']}")):
                assert float(r[column]) == pytest.approx(float(at[base]['per_batch_s']) / seconds)
        assert float(at['target_cached']['mse_vs_target']) == float(at['target_sliding']['mse_vs_sliding']) == 0.0
        assert float(at['spec_cached_s0.7_k3']['target_calls_per_forecast']) <= 8 == float(at['target_cached']['target_calls_per_forecast'])
    assert (tmp_path / 'out' / 'speedup.png').stat().st_size > 0


import step_costs  # noqa: E402
from speculative.speed_model import StepCosts  # noqa: E402


@pytest.mark.parametrize('draft, speedup_k2', [({}, '1.00'), (TTM, '1.20')], ids=['autoregressive', 'one_call'])
def test_step_costs_table_for_fixed_costs(monkeypatch, draft, speedup_k2):
    """With c = 0.5 and v(1), v(2) = 1.5, 2 (stubbed timings): S(a=1) = 2 / (0.5 + 1.5) = 1 at K = 1;
    at K = 2, 3 / (2*0.5 + 2) = 1 for an autoregressive draft, 3 / (0.5 + 2) = 1.2 for a one-call draft."""
    seen = []

    def fixed_costs(rollout, k_max, device):
        seen.append((type(rollout).__name__, len(rollout.length), k_max))
        return StepCosts(0.5, [1.0, 1.5, 2.0], rollout.one_call_draft)

    monkeypatch.setattr(step_costs, 'measure_step_costs', fixed_costs)
    bench, args = step_costs.parse(cli_args(dict(**MODEL, **draft, n_vars=2)) + ['--batch_sizes', '1', '3', '--ks', '1', '2'])
    target, draft_model = build_model(args.model, args).eval(), build_model(args.spec_draft_model, args).eval()
    rows = list(step_costs.cost_rows(target, draft_model, args, bench, 'cpu'))
    assert seen == [('SlidingRollout', 1, 2), ('CachedRollout', 1, 2), ('SlidingRollout', 3, 2), ('CachedRollout', 3, 2)]
    assert all(row[2:] == ['0.500', '1.50', '2.00', '1.00', speedup_k2] for row in rows)
    assert [row[:2] for row in rows] == [['sliding', '1'], ['cached', '1'], ['sliding', '3'], ['cached', '3']]


def test_without_a_draft_only_the_target_only_candidates_run(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(build_model('timer_xl', make_args(**MODEL, use_norm=True)), str(tmp_path / 'target.pth'))
    flags = dict(target_ckpt=tmp_path / 'target.pth', out_dir=tmp_path / 'out', root_path=ETT_ROOT,
                 data_path='ETTh1.csv', num_workers=0, batch_sizes=1, horizons=288, n_batches=1, use_norm=True, **MODEL)
    rows = speedup.main(cli_args(flags))
    at = {r['candidate']: r for r in rows}
    assert set(at) == {'target_sliding', 'target_cached', 'target_cached_frozen'}
    assert at['target_cached']['mse_vs_target'] == 0 < at['target_cached_frozen']['mse_vs_target']

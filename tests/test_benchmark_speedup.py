"""scripts/benchmarks/speedup.py --quick on tiny random models: one CSV row per candidate and grid
point, with speedups that are the ratios of the timed columns."""
import csv
import sys

import pytest
import torch

from conftest import ETT_ROOT, REPO_ROOT, cli_args, save_tiny
from models import model_from_flags

sys.path.insert(0, str(REPO_ROOT / 'scripts' / 'benchmarks'))
import speedup  # noqa: E402

MODEL = dict(d_model=32, n_heads=2, d_ff=32, e_layers=2, seq_len=192, test_seq_len=192, input_token_len=96,
             output_token_len=96)


TTM = dict(spec_draft_model='ttm', ttm_patches=3, hidden_dim=8, layers=1, mode='common_channel')


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize('draft', [{}, TTM], ids=['timer_xl_draft', 'ttm_one_call'])
def test_quick_benchmark_rows_and_ratios(tmp_path, draft):
    draft_model = draft.get('spec_draft_model', 'timer_xl_draft')
    for name, path in (('timer_xl', 'target.pth'), (draft_model, 'draft.pth')):
        save_tiny(tmp_path / path, name, **MODEL, **draft)
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
        for r in at.values():
            if r['candidate'].startswith('spec_'):  # 3 warm-up repeats, then one after each of the 9 passes
                assert float(r['c_min']) <= float(r['c']) <= float(r['c_max']) and r['cost_repeats'] == '12'
                assert r['cost_check'] != 'ok' or float(r['predicted_speedup']) > 0
    assert (tmp_path / 'out' / 'speedup.png').stat().st_size > 0


import step_costs  # noqa: E402
from speculative import speed_model  # noqa: E402
from speculative.speed_model import Repeat  # noqa: E402


@pytest.mark.parametrize('draft, speedup_k2', [({}, '1.00'), (TTM, '1.20')], ids=['autoregressive', 'one_call'])
def test_step_costs_table_for_fixed_costs(monkeypatch, draft, speedup_k2):
    """With c = 0.5 and v(1), v(2) = 1.5, 2 (stubbed timings): S(a=1) = 2 / (0.5 + 1.5) = 1 at K = 1;
    at K = 2, 3 / (2*0.5 + 2) = 1 for an autoregressive draft, 3 / (0.5 + 2) = 1.2 for a one-call draft.
    The second repeat is under load (2x): the ratios, and so their ranges, stay the same."""
    seen, loads = [], iter([1.0, 1.0, 2.0] * 4)  # per table row: the untimed pass, then 2 repeats

    def fixed_costs(build, k_max, device):
        seen.append((type(build(True)).__name__, len(build(False).length), k_max))
        load = next(loads)
        return Repeat(0.5 * load, (1.0 * load, 1.5 * load, 2.0 * load), 3.0 * load, 2.0 * load)

    monkeypatch.setattr(speed_model, 'time_calls', fixed_costs)
    flags = cli_args(dict(**MODEL, **draft, n_vars=2)) + ['--batch_sizes', '1', '3', '--ks', '1', '2', '--repeats', '2']
    bench, args = step_costs.parse(flags)
    target, draft_model = model_from_flags(args.model, args).eval(), model_from_flags(args.spec_draft_model, args).eval()
    rows = list(step_costs.cost_rows(target, draft_model, args, bench, 'cpu'))
    assert seen == [('SlidingRollout', 1, 2)] * 3 + [('CachedRollout', 1, 2)] * 3 + \
        [('SlidingRollout', 3, 2)] * 3 + [('CachedRollout', 3, 2)] * 3
    assert all(row[2:] == ['1500.00', '0.500 (0.500-0.500)', '1.50 (1.50-1.50)', '2.00 (2.00-2.00)', '3.00', '1.00',
                           speedup_k2] for row in rows)  # the step: the median of 1 s and 2 s
    assert [row[:2] for row in rows] == [['sliding', '1'], ['cached', '1'], ['sliding', '3'], ['cached', '3']]


@pytest.mark.data
def test_without_a_draft_only_the_target_only_candidates_run(tmp_path):
    save_tiny(tmp_path / 'target.pth', **MODEL, use_norm=True)
    flags = dict(target_ckpt=tmp_path / 'target.pth', out_dir=tmp_path / 'out', root_path=ETT_ROOT,
                 data_path='ETTh1.csv', num_workers=0, batch_sizes=1, horizons=288, n_batches=1, use_norm=True, **MODEL)
    rows = speedup.main(cli_args(flags))
    at = {r['candidate']: r for r in rows}
    assert set(at) == {'target_sliding', 'target_cached', 'target_cached_frozen'}
    assert at['target_cached']['mse_vs_target'] == 0 < at['target_cached_frozen']['mse_vs_target']


# ---- fairness of the timed passes, on fake decoders and a fake timer ----------------------------------

class RecordingDecoder:
    """Records (name, batch, timed) for every generate call; the batch is read from x."""

    def __init__(self, name, log, timing):
        self.name, self.log, self.timing = name, log, timing

    def generate(self, x, horizon, ids):
        self.log.append((self.name, int(x[0, 0, 0]), self.timing[0]))
        return x.new_zeros(len(x), horizon, 1)


@pytest.mark.parametrize('n_candidates, n_batches', [(12, 2), (3, 5), (4, 4)])
def test_measure_warms_up_untimed_then_rotates_every_candidate_through_every_position(monkeypatch, n_candidates,
                                                                                      n_batches):
    """Before any timing each candidate runs once, untimed, on the first batch; then every candidate
    decodes every batch, timed, and takes each position of a pass equally often (12 candidates over 2
    batches: 12 passes, 3 over 5 batches: 6 passes, 4 over 4: 4)."""
    log, timing = [], [False]

    def fake_timed(fn, device):
        timing[0] = True
        result = fn()
        timing[0] = False
        return result, 1.0

    monkeypatch.setattr(speedup, 'timed', fake_timed)
    names = [f'cand{i}' for i in range(n_candidates)]
    cands = {name: ('sliding', None, None, RecordingDecoder(name, log, timing)) for name in names}
    batches = [(torch.full((1, 4, 1), float(b)), None, [b]) for b in range(n_batches)]
    seconds, _ = speedup.measure(cands, batches, 4, 'cpu')

    warm_up, timed_calls = log[:n_candidates], log[n_candidates:]
    assert sorted(warm_up) == sorted((name, 0, False) for name in names)
    assert all(was_timed for _, _, was_timed in timed_calls)
    n_passes = len(timed_calls) // n_candidates
    assert n_passes * n_candidates == len(timed_calls) and n_passes % n_candidates == 0 and n_passes >= n_batches
    passes = [timed_calls[i * n_candidates:(i + 1) * n_candidates] for i in range(n_passes)]
    for one_pass in passes:
        assert sorted(name for name, _, _ in one_pass) == sorted(names) and len({b for _, b, _ in one_pass}) == 1
    assert {one_pass[0][1] for one_pass in passes} == set(range(n_batches))
    for name in names:
        positions = [[n for n, _, _ in one_pass].index(name) for one_pass in passes]
        assert sorted(positions) == sorted(list(range(n_candidates)) * (n_passes // n_candidates))
        assert len(seconds[name]) == n_passes


@pytest.mark.data
def test_mse_budgets_add_one_calibrated_candidate_each(tmp_path, capsys):
    for name, path in (('timer_xl', 'target.pth'), ('timer_xl_draft', 'draft.pth')):
        save_tiny(tmp_path / path, name, **MODEL, use_norm=True)
    flags = dict(target_ckpt=tmp_path / 'target.pth', draft_ckpt=tmp_path / 'draft.pth', out_dir=tmp_path / 'out',
                 root_path=ETT_ROOT, data_path='ETTh1.csv', num_workers=0, batch_sizes=2, horizons=288, n_batches=1,
                 ks=[1, 2], mse_budgets=[0, 50], spec_calib_windows=4, spec_calib_sigmas=[0.5, 5.0], use_norm=True,
                 **MODEL)
    rows = {r['candidate']: r for r in speedup.main(cli_args(flags))}
    assert set(rows) == {'target_sliding', 'target_cached', 'target_cached_frozen', 'spec_cached_budget0',
                         'spec_cached_budget50'}
    assert rows['spec_cached_budget0']['k'] == 0  # nothing is within a budget of 0: target-only steps
    assert rows['spec_cached_budget0']['mse_vs_target'] == pytest.approx(0, abs=1e-10)
    assert rows['spec_cached_budget50']['mse_budget'] == '50'
    assert rows['spec_cached_budget50']['sigma'] in ('', 0.5, 5.0)
    assert capsys.readouterr().out.count('calibration:') == 1  # one grid, measured once for both budgets

"""Speculative decoding through run.main (speculative.md sections 6-8): result files, baseline
comparison, the standard test path with --trace_inference_breakdown and --target_sample, and the
start-up errors.

Every run tests from checkpoints (--is_training 0) saved from freshly initialised tiny models:
training adds nothing to the wiring checked here. Data: the offline ETTh1 file, P = 96,
L = 192 (two tokens), H = 288 (three patches), a few test batches of 4 windows.
"""
import csv
import json
import math
import re

import pytest
import torch

import run
from conftest import ETT_ROOT, cli_args, make_args, save_tiny
from exp import exp_speculative
from exp.exp_forecast import ExpForecast
from exp.exp_speculative import ExpSpeculative
from helpers import target_only
from models import model_from_flags
from speculative import RolloutOptions
from speculative.random_streams import sample_generators
from utils.checkpoint import load_checkpoint
from utils.records import BREAKDOWN_FILE, FORECAST_RESULT_FILE, SUMMARY_FILE, parse_summary

pytestmark = pytest.mark.data

P, L, H = 96, 192, 288
MODEL = dict(d_model=32, n_heads=2, d_ff=32, e_layers=2, seq_len=L, input_token_len=P,
             output_token_len=P, test_seq_len=L, test_pred_len=H)  # draft: d_model 8, 1 head, 1 layer
COMPONENTS = ('norm_in', 'embedding', 'blocks', 'blocks.attn', 'blocks.mlp', 'head', 'denorm_out')

FIXED_SUMMARY_LINES = [r'setting:tgt', r'mode:(speculative|standard)', r'mse:\d+\.\d{6}, mae:\d+\.\d{6}',
                       r'total_gen_time_s:\d+\.\d{6}, per_batch_s:\d+\.\d{6}',
                       r'accepted:\d+, attempted:\d+, acceptance_pct:(\d+\.\d{2}|nan)']
SPEC_BREAKDOWN_LINES = [r'setting:tgt', r'mode:speculative', r't_draft_total:\d+\.\d{6}, n_draft_calls:\d+',
                        r't_prep_verify_total:\d+\.\d{6}',
                        r't_target_verify_total:\d+\.\d{6}, n_target_verify_calls:\d+',
                        r't_target_sample_total:\d+\.\d{6}, n_target_sample_calls:\d+',
                        r't_accept_cpu_total:\d+\.\d{6}']
CSV_HEADER = ('batch_idx,round_i,sample_idx,kind,alpha,r,tol_accept,accept,mse,sse_p,sse_q,logp,logq,log_ratio,'
              'ratio,sigma_eff,sigma_mode,bias,mean_xi_minus_q,var_xi_minus_q,mean_xi_minus_p,var_xi_minus_p')


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """Target checkpoints/tgt/checkpoint.pth and draft checkpoints, all freshly initialised."""
    root = tmp_path_factory.mktemp('ckpts')

    def save(model, name, **overrides):
        save_tiny(root / name, model, len(name), **{**MODEL, **overrides})

    save('timer_xl', 'checkpoints/tgt/checkpoint.pth')
    save('timer_xl_draft', 'draft.pth')
    save('timer_xl_draft', 'draft_stochastic.pth', draft_stochastic=True)
    save('timer_xl_draft', 'draft_wide.pth', d_model=64)  # draft d_model 16 instead of 8
    save('timer_xl_draft', 'draft_p48.pth', input_token_len=48, output_token_len=48)
    return root


def argv(ckpts, **flags):
    """run.py command line testing checkpoints/tgt; True -> bare switch, False/None -> omitted."""
    base = dict(task_name='forecast', is_training=0, model_id='t', model='timer_xl',
                data='MultivariateDatasetBenchmark', root_path=ETT_ROOT, data_path='ETTh1.csv',
                checkpoints=ckpts / 'checkpoints', test_dir='tgt', num_workers=0, batch_size=4,
                test_max_batches=3, **MODEL)
    return cli_args({**base, **flags})


def spec_argv(ckpts, draft='draft.pth', **flags):
    return argv(ckpts, **{'use_speculative': True, 'spec_draft_ckpt': ckpts / draft, **flags})


def spy(monkeypatch, cls, name):
    """Wrap cls.name; returns the list of (self, args, result) of its calls."""
    calls, original = [], getattr(cls, name)

    def wrapper(self, *args):
        result = original(self, *args)
        calls.append((self, args, result))
        return result

    monkeypatch.setattr(cls, name, wrapper)
    return calls


def forecasts(calls):
    """(contexts [N, L, C], forecasts [N, H, C]) of the spied _forecast_batch calls."""
    return (torch.cat([args[1].cpu() for _, args, _ in calls]),
            torch.cat([pred.cpu() for _, _, pred in calls]))


def load(ckpts, model, path, **overrides):
    return load_checkpoint(model_from_flags(model, make_args(**{**MODEL, **overrides})), str(path)).eval()


def read_records(path):
    text = path.read_text()
    assert text.endswith('\n\n')
    return [block.split('\n') for block in text[:-2].split('\n\n')]


def forecast_records(path):
    return re.findall(r'(?P<setting>[^\n]+)  \nmse:(?P<mse>[^,\n]+), mae:(?P<mae>[^\n]+)\n\n', path.read_text())


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


# ---- the speculative run and its files ----------------------------------------------------------

def test_speculative_run_writes_summary_breakdown_csv_and_forecast_record(ckpts, workdir, monkeypatch):
    reports = spy(monkeypatch, ExpSpeculative, '_report_inference')
    run.main(spec_argv(ckpts, spec_compare_baseline=True, trace_inference_breakdown=True, spec_debug_accept=True,
                       spec_debug_out='debug.csv'))
    exp = reports[0][0]
    counters = exp.decoder.counters

    [summary] = read_records(workdir / SUMMARY_FILE)
    for line, pattern in zip(summary, FIXED_SUMMARY_LINES):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert summary[1] == 'mode:speculative'
    assert re.fullmatch(r'spec_k:3, spec_sigma:0\.7, spec_accept_bias:1, accept_mode:tolerance, rollout:sliding, '
                        r'draft_stochastic:0, spec_adaptive:0(, .*)?', summary[5]), summary[5]
    assert any(re.fullmatch(r'baseline_per_batch_s:\d+\.\d{6}, speedup:\d+\.\d{3}, mse_vs_target:\d+\.\d{6}, '
                            r'baseline_mse:\d+\.\d{6}', line)
               for line in summary[5:])
    assert any(re.search(r'predicted_speedup:\d+\.\d{3}', line) for line in summary[5:])
    record = parse_summary(workdir / SUMMARY_FILE)[0]
    assert record['accepted'] == counters.accepted and record['attempted'] == counters.attempted
    assert 0 < counters.accepted < counters.attempted  # an untrained draft: some accepted, some not
    assert record['per_batch_s'] == pytest.approx(record['total_gen_time_s'] / 3, abs=2e-6)
    # the step costs: 3 repeats in the warm-up, then one after each of the 3 timed batches
    assert record['cost_repeats'] == 6 and record['c_min'] <= record['measured_cost_ratio_c'] <= record['c_max']
    assert record['v_min'] <= record['verify_cost_v'] <= record['v_max']

    [(setting, mse, mae)] = forecast_records(workdir / FORECAST_RESULT_FILE)
    assert setting == 'tgt'
    assert summary[2] == f'mse:{float(mse):.6f}, mae:{float(mae):.6f}'

    [breakdown] = read_records(workdir / BREAKDOWN_FILE)
    assert len(breakdown) == len(SPEC_BREAKDOWN_LINES)
    for line, pattern in zip(breakdown, SPEC_BREAKDOWN_LINES):
        assert re.fullmatch(pattern, line), (line, pattern)
    times = parse_summary(workdir / BREAKDOWN_FILE)[0]
    assert times['n_target_verify_calls'] == exp.decoder.tracer.n_target_verify_calls > 0
    assert times['n_target_sample_calls'] == 0  # tolerance mode draws nothing

    # all three batches are within --spec_debug_max_batches (3): one row per tested proposal
    assert (workdir / 'debug.csv').read_text().split('\n')[0] == CSV_HEADER
    rows = read_csv(workdir / 'debug.csv')
    proposals = [r for r in rows if r['kind'] == 'proposal']
    assert len(proposals) == counters.attempted
    assert sum(int(r['accept']) for r in proposals) == counters.accepted
    assert len(rows) - len(proposals) == counters.attempted - counters.accepted  # one correction per rejection
    assert {r['batch_idx'] for r in rows} == {'0', '1', '2'}


def test_debug_csv_has_rows_for_point_and_stochastic_drafts_in_both_modes(ckpts, workdir):
    seen = set()
    for draft, stochastic in (('draft.pth', False), ('draft_stochastic.pth', True)):
        for mode in ('tolerance', 'lossless'):
            n_before = len(read_csv(workdir / 'debug.csv')) if (workdir / 'debug.csv').exists() else 0
            run.main(spec_argv(ckpts, draft, draft_stochastic=stochastic, spec_accept_mode=mode,
                               spec_debug_accept=True, spec_debug_out='debug.csv', spec_debug_max_batches=2))
            new = read_csv(workdir / 'debug.csv')[n_before:]
            assert {r['batch_idx'] for r in new} == {'0', '1'}  # 3 batches tested, 2 logged
            assert {r['sigma_mode'] for r in new} == {'draft_logvar' if stochastic else 'fixed'}
            assert {r['kind'] for r in new} == {'proposal', 'target_draw'}
            for r in new:
                if r['kind'] == 'proposal' and mode == 'lossless':
                    assert float(r['log_ratio']) == pytest.approx(float(r['logp']) - float(r['logq']), abs=1e-3)  # 10 digits
                if r['kind'] == 'proposal' and mode == 'tolerance':
                    assert r['tol_accept'] == r['accept'] and float(r['sse_q']) == 0.0
            seen.add((stochastic, mode))
    assert len(seen) == 4
    assert (workdir / 'debug.csv').read_text().count(CSV_HEADER) == 1
    summaries = parse_summary(workdir / SUMMARY_FILE)
    assert [(r['draft_stochastic'], r['accept_mode']) for r in summaries] == [
        (0, 'tolerance'), (0, 'lossless'), (1, 'tolerance'), (1, 'lossless')]
    assert len(forecast_records(workdir / FORECAST_RESULT_FILE)) == 4


# ---- sigma limits: the comparison really is with the target ----------------------------------------

def test_huge_sigma_gives_the_draft_only_rollout_and_a_nonzero_mse_vs_target(ckpts, workdir, monkeypatch):
    batches = spy(monkeypatch, ExpSpeculative, '_forecast_batch')
    run.main(spec_argv(ckpts, spec_sigma=1e6, spec_compare_baseline=True))
    x, out = forecasts(batches)
    exp = batches[0][0]
    assert exp.decoder.counters.accepted == exp.decoder.counters.attempted > 0

    target = load(ckpts, 'timer_xl', ckpts / 'checkpoints/tgt/checkpoint.pth')
    draft = load(ckpts, 'timer_xl_draft', ckpts / 'draft.pth')
    with torch.no_grad():
        # K = 3 >= S - 1: one round of S - 1 = 2 accepted draft patches, then the target's bonus
        draft_only = target_only(draft, x, H)
        torch.testing.assert_close(out[:, :H - P], draft_only[:, :H - P], rtol=0, atol=1e-5)
        bonus = target(torch.cat([x, draft_only[:, :H - P]], 1)[:, -L:]).mean[:, -P:]
        torch.testing.assert_close(out[:, H - P:], bonus, rtol=0, atol=1e-5)
        target_out = target_only(target, x, H)
    mse_vs_target = exp.squared_diff_to_target / exp.n_values
    assert mse_vs_target > 1e-3
    assert mse_vs_target == pytest.approx((out - target_out).double().square().mean().item(), rel=1e-4)
    assert parse_summary(workdir / SUMMARY_FILE)[0]['mse_vs_target'] == pytest.approx(mse_vs_target, abs=1e-6)


@pytest.mark.parametrize('rollout', ['sliding', 'cached'])
@pytest.mark.parametrize('adaptive', [False, True])
def test_tiny_sigma_gives_the_target_only_rollout(ckpts, workdir, monkeypatch, adaptive, rollout):
    batches = spy(monkeypatch, ExpSpeculative, '_forecast_batch')
    run.main(spec_argv(ckpts, spec_sigma=1e-8, spec_compare_baseline=True, spec_adaptive=adaptive, rollout=rollout))
    x, out = forecasts(batches)
    exp = batches[0][0]
    assert exp.decoder.counters.accepted == 0
    assert exp.decoder.counters.attempted > 0 or adaptive  # adaptive K may have stopped proposing in the warm-up
    assert exp.squared_diff_to_target / exp.n_values < 1e-10
    target = load(ckpts, 'timer_xl', ckpts / 'checkpoints/tgt/checkpoint.pth')
    with torch.no_grad():
        expected = target_only(target, x, H, rollout=RolloutOptions(rollout))
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    [record] = read_records(workdir / SUMMARY_FILE)
    assert record[4].startswith('accepted:0, ') and f'spec_adaptive:{int(adaptive)}' in record[5]
    assert f'rollout:{rollout}' in record[5]
    record = parse_summary(workdir / SUMMARY_FILE)[0]
    assert record['mse_vs_target'] == 0.0 and record['baseline_mse'] == pytest.approx(record['mse'], abs=2e-6)


# ---- the standard test path -------------------------------------------------------------------

def test_standard_run_writes_standard_records_and_component_breakdown(ckpts, workdir, monkeypatch):
    reports = spy(monkeypatch, ExpForecast, '_report_inference')
    run.main(argv(ckpts, trace_inference_breakdown=True))
    exp = reports[0][0]

    [summary] = read_records(workdir / SUMMARY_FILE)
    for line, pattern in zip(summary, FIXED_SUMMARY_LINES[:4]):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert summary[1] == 'mode:standard' and 'target_sample:0' in summary[4]
    [(_, mse, mae)] = forecast_records(workdir / FORECAST_RESULT_FILE)
    assert summary[2] == f'mse:{float(mse):.6f}, mae:{float(mae):.6f}'

    [breakdown] = read_records(workdir / BREAKDOWN_FILE)
    assert breakdown[:2] == ['setting:tgt', 'mode:standard']
    n_forward = 3 * math.ceil(H / P)  # 3 batches, one target call per patch
    assert re.fullmatch(rf't_baseline_forward_total:\d+\.\d{{6}}, n_baseline_calls:{n_forward}', breakdown[2])
    lines = {}
    for line in breakdown[3:]:
        match = re.fullmatch(r'comp_(\S+)_total:(\d+\.\d{6}), per_call_avg:(\d+\.\d{6})', line)
        assert match, line
        lines[match[1]] = (float(match[2]), float(match[3]))
    assert set(COMPONENTS) <= set(lines)
    calls = exp.component_timer.calls
    per_layer = {'blocks.attn', 'blocks.mlp'}
    for name in COMPONENTS:
        assert calls[name] == (MODEL['e_layers'] if name in per_layer else 1) * n_forward, name
        total, per_call = lines[name]
        assert total == pytest.approx(exp.component_timer.totals[name], abs=1e-6)
        assert per_call == pytest.approx(total / calls[name], abs=2e-6)


def test_target_sample_is_reproducible_per_sample_and_independent_of_batch_size(ckpts, workdir, monkeypatch):
    batches = spy(monkeypatch, ExpForecast, '_forecast_batch')

    def test_run(**flags):
        batches.clear()
        run.main(argv(ckpts, **{'test_max_batches': 2, **flags}))
        return forecasts(batches)

    x, point = test_run()
    _, sampled = test_run(target_sample=True, seed=7)
    _, again = test_run(target_sample=True, seed=7)
    x_one, one_by_one = test_run(target_sample=True, seed=7, batch_size=1, test_max_batches=8)
    _, other_seed = test_run(target_sample=True, seed=8)

    assert sampled.shape == point.shape == (8, H, 7)
    torch.testing.assert_close(x_one, x)
    torch.testing.assert_close(again, sampled, rtol=0, atol=0)
    torch.testing.assert_close(one_by_one, sampled, rtol=0, atol=1e-5)
    assert (sampled - point).abs().mean() > 0.1 and (other_seed - sampled).abs().mean() > 0.1
    # the first patch is the target's point forecast plus sigma * eps from the sample's own stream
    eps = torch.stack([torch.randn(P, 7, generator=g, dtype=torch.float64)
                       for g in sample_generators(7, range(8))]).float()
    torch.testing.assert_close(sampled[:, :P], point[:, :P] + 0.7 * eps, rtol=0, atol=1e-5)
    assert [r['target_sample'] for r in parse_summary(workdir / SUMMARY_FILE)] == [0, 1, 1, 1, 1]


# ---- timing: what each side's time contains, and the alternation ---------------------------------

TARGET_CALL_S, DRAFT_CALL_S = 1.0, 0.25


@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that advances only by model calls: 1 s per target call, 0.25 s per draft call.
    Yields the sides of the timed calls in order ('speculative' when it called the draft)."""
    from models.timer_xl import TimerXL
    from models.timer_xl_draft import TimerXLDraft
    from utils import timing

    clock = {'now': 0.0, 'draft_calls': 0}

    def advance(module, _inputs):
        if isinstance(module, TimerXLDraft):
            clock['now'] += DRAFT_CALL_S
            clock['draft_calls'] += 1
        elif isinstance(module, TimerXL):
            clock['now'] += TARGET_CALL_S

    monkeypatch.setattr(timing, 'time', type('FakeTime', (), {'perf_counter': staticmethod(lambda: clock['now'])}))
    sides = []

    def timed_side(fn, device):
        drafts_before = clock['draft_calls']
        result = timing.timed(fn, device)
        sides.append('speculative' if clock['draft_calls'] > drafts_before else 'baseline')
        return result

    monkeypatch.setattr(exp_speculative, 'timed', timed_side)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(advance)
    yield sides
    handle.remove()


@pytest.mark.parametrize('rollout', ['sliding', 'cached'])
def test_speedup_is_baseline_time_over_speculative_time_with_all_their_work(ckpts, workdir, fake_clock, rollout):
    """Batch size 1, so per-sample counts are batched calls. The speculative side pays every target
    and draft call of its rounds (and, cached, one prefill per model and batch); the baseline pays
    ceil(H/P) target calls (+ its prefill). The warm-up and the step-cost measurement are not timed."""
    n_batches, steps = 4, math.ceil(H / P)
    run.main(spec_argv(ckpts, batch_size=1, test_max_batches=n_batches, spec_compare_baseline=True,
                       spec_sigma=1e6, rollout=rollout))
    record = parse_summary(workdir / SUMMARY_FILE)[0]
    prefill = 1 if rollout == 'cached' else 0
    spec_s = ((record['target_calls'] + n_batches * prefill) * TARGET_CALL_S
              + (record['draft_calls'] + n_batches * prefill) * DRAFT_CALL_S)
    baseline_s = n_batches * (steps + prefill) * TARGET_CALL_S
    assert 0 < record['draft_calls'] and record['target_calls'] < n_batches * steps  # speculation happened
    assert record['total_gen_time_s'] == pytest.approx(spec_s)
    assert record['baseline_per_batch_s'] == pytest.approx(baseline_s / n_batches)
    assert record['speedup'] == pytest.approx(baseline_s / spec_s, abs=1e-3)
    # alternation: baseline first in even batches, speculative first in odd ones
    assert fake_clock == ['baseline', 'speculative', 'speculative', 'baseline'] * (n_batches // 2)


def test_a_k_beyond_the_horizons_patches_is_clipped_with_a_note(ckpts, workdir, capsys):
    args = run.parse_args(spec_argv(ckpts, spec_k=1000))
    assert args.spec_k == H // P
    assert f'note: --spec_k 1000 is more than the {H // P} patch(es) of the horizon' in capsys.readouterr().out


def test_a_budget_run_records_its_calibration_and_reuses_it(ckpts, workdir, capsys):
    flags = dict(spec_mse_budget=5, spec_calib_windows=8, spec_calib_sigmas=[0.3, 3.0], spec_k=2)
    run.main(spec_argv(ckpts, **flags))
    first = capsys.readouterr().out
    assert 'calibration:' in first and 'saved to' in first
    saved = list(ckpts.glob('calibration-*.json'))
    assert len(saved) == 1
    stored = json.loads(saved[0].read_text())
    assert stored['windows'] == 8 and len(stored['settings']) == 2 * 3
    record = (workdir / SUMMARY_FILE).read_text().split('\n\n')[0]
    budget_line = next(line for line in record.splitlines() if line.startswith('spec_mse_budget:5'))
    fields = dict(part.split(':') for part in budget_line.split(', '))
    baseline = float(next(line for line in record.splitlines() if 'baseline_mse' in line).split('baseline_mse:')[1])
    mse = float(record.splitlines()[2].split(',')[0].split(':')[1])
    assert float(fields['test_mse_increase_pct']) == pytest.approx(100 * (mse / baseline - 1), abs=2e-3)
    chosen = stored['chosen']
    assert (fields['chosen_k'] == '0') == (chosen is None)
    if chosen is not None:
        assert float(fields['chosen_sigma']) == chosen['sigma'] and chosen['mse_increase_upper_pct'] <= 5
    run.main(spec_argv(ckpts, **flags))
    assert 'calibration read from' in capsys.readouterr().out and len(list(ckpts.glob('calibration-*.json'))) == 1
    run.main(spec_argv(ckpts, **{**flags, 'spec_mse_budget': 1}))  # another budget: another calibration
    assert len(list(ckpts.glob('calibration-*.json'))) == 2

"""Every result file: written here, and read back by parse_summary.

Records are appended in the working directory, each built whole and appended with a single write, so
concurrent or crashed runs never leave half a record:
- result_long_term_forecast.txt (forecast_record): the setting, then mse and mae of a test;
- result_inference_summary.txt and result_inference_breakdown.txt (speculative.md section 7);
- the per-proposal debug CSV (--spec_debug_out) with the columns its caller gives.
Tables of the benchmarks (write_table) are written whole, atomically.

A summary record (speculative; standard omits the accepted line and has the rollout line instead of
the spec lines):

    setting:<setting>
    mode:speculative
    mse:%.6f, mae:%.6f
    total_gen_time_s:%.6f, per_batch_s:%.6f
    accepted:%d, attempted:%d, acceptance_pct:%.2f
    spec_k:%d, spec_sigma:%g, spec_accept_bias:%g, accept_mode:%s, rollout:%s (sliding, cached_trailing or cached_frozen), draft_stochastic:%d, spec_adaptive:%d
        [, test_pred_len:%d, batch_size:%d]   (when given: lets sweeps tell their grid points apart)
    forecasts:%d, target_calls:%d, target_calls_per_forecast:%.3f, target_only_calls_per_forecast:%d,
        draft_calls:%d, patches_per_target_call:%.3f, residual_fallbacks:%d        (one line)
    measured_cost_ratio_c:%.4f, verify_cost_v:%.4f, predicted_speedup:%.3f   (when the costs are known)
    c_min:%.4f, c_max:%.4f, v_min:%.4f, v_max:%.4f, prefill_cost:%.4f, target_prefill_cost:%.4f,
        cost_repeats:%d, cost_check:%s, adaptive_fallback_rounds:%d        (one line, with the line above)
    baseline_per_batch_s:%.6f, speedup:%.3f, mse_vs_target:%.6f, baseline_mse:%.6f   (with a baseline comparison)
    spec_mse_budget:%g, calib_windows:%d, calib_s:%.1f, chosen_sigma:%g, chosen_k:%s, calib_acceptance_pct:%.2f,
        calib_mse_increase_pct:%.3f, calib_mse_increase_upper_pct:%.3f, calib_predicted_speedup:%.3f,
        test_mse_increase_pct:%.3f        (one line, with --spec_mse_budget; chosen_k 0: target-only decoding)
    <blank line>

Counts are per sample (speculative/counters.py); target_only_calls_per_forecast is ceil(H/P).
The speed model (speculative/speed_model.py): c and v (of --spec_k; with adaptive K, of the K most
proposing rounds used) in target steps are medians over cost_repeats repeats spread across the run, with their min and max;
prefill_cost and target_prefill_cost are the costs of building the speculative and the target-only
rollout of a batch (the `cached` prefills); predicted_speedup is the run's, prefills included, and
nan when cost_check is not ok ("impossible c=0 v(1)=0.1812" names the impossible medians; adaptive K
then decodes with K = --spec_k, in adaptive_fallback_rounds rounds).
"""
import csv
import io
import os

from utils.atomic import atomic_write

FORECAST_RESULT_FILE = "result_long_term_forecast.txt"
SUMMARY_FILE = "result_inference_summary.txt"
BREAKDOWN_FILE = "result_inference_breakdown.txt"


def append_record(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(record)


def forecast_record(setting, mse, mae):
    return f"{setting}  \nmse:{str(mse)}, mae:{str(mae)}\n\n"


def _append_lines(path, lines):
    record = "\n".join(lines) + "\n\n"
    append_record(path, record)
    return record


def _summary_head(setting, mode, mse, mae, total_gen_time_s, n_batches):
    per_batch_s = total_gen_time_s / n_batches
    return [f"setting:{setting}",
            f"mode:{mode}",
            f"mse:{mse:.6f}, mae:{mae:.6f}",
            f"total_gen_time_s:{total_gen_time_s:.6f}, per_batch_s:{per_batch_s:.6f}"]


def write_standard_summary(path, setting, mse, mae, total_gen_time_s, n_batches,
                           rollout="sliding", target_sample=False):
    """Append a target-only record; returns the record text."""
    lines = _summary_head(setting, "standard", mse, mae, total_gen_time_s, n_batches)
    lines.append(f"rollout:{rollout}, target_sample:{int(target_sample)}")
    return _append_lines(path, lines)


def write_speculative_summary(path, setting, mse, mae, total_gen_time_s, n_batches, counters,
                              config, rollout="sliding", baseline_per_batch_s=None,
                              mse_vs_target=None, baseline_mse=None, speed=None, test_pred_len=None,
                              batch_size=None, calibration=None):
    """Append a speculative record (SpecCounters, SpecConfig); returns the record text.

    speedup = baseline_per_batch_s / per_batch_s; the comparison line needs baseline_per_batch_s,
    mse_vs_target and baseline_mse (the target-only MSE against the truth); the speed-model lines
    need `speed` (speculative/speed_model.py speed_report). test_pred_len and batch_size (both or
    neither) end the spec line. calibration: Calibration.summary() of an --spec_mse_budget run (with a
    baseline comparison)."""
    c = counters
    lines = _summary_head(setting, "speculative", mse, mae, total_gen_time_s, n_batches)
    target_only_calls = "nan" if test_pred_len is None else -(-test_pred_len // config.patch_len)
    lines += [f"accepted:{c.accepted}, attempted:{c.attempted}, "
              f"acceptance_pct:{c.acceptance_pct:.2f}",
              f"spec_k:{config.k}, spec_sigma:{config.sigma:g}, "
              f"spec_accept_bias:{config.bias:g}, accept_mode:{config.accept_mode}, "
              f"rollout:{rollout}, draft_stochastic:{int(config.draft_stochastic)}, "
              f"spec_adaptive:{int(config.adaptive)}"
              + (f", test_pred_len:{test_pred_len}, batch_size:{batch_size}" if test_pred_len is not None else ""),
              f"forecasts:{c.forecasts}, target_calls:{c.target_calls}, "
              f"target_calls_per_forecast:{c.target_calls_per_forecast:.3f}, "
              f"target_only_calls_per_forecast:{target_only_calls}, draft_calls:{c.draft_calls}, "
              f"patches_per_target_call:{c.patches_per_target_call:.3f}, "
              f"residual_fallbacks:{c.residual_fallbacks}"]
    if speed is not None:
        lines += _speed_lines(**speed)
    if baseline_per_batch_s is not None:
        speedup = baseline_per_batch_s / (total_gen_time_s / n_batches)
        lines.append(f"baseline_per_batch_s:{baseline_per_batch_s:.6f}, speedup:{speedup:.3f}, "
                     f"mse_vs_target:{mse_vs_target:.6f}, baseline_mse:{baseline_mse:.6f}")
    if calibration is not None:
        lines.append(_calibration_line(test_mse_increase_pct=100 * (mse / baseline_mse - 1), **calibration))
    return _append_lines(path, lines)


def _calibration_line(spec_mse_budget, calib_windows, calib_s, chosen_sigma, chosen_k, calib_acceptance_pct,
                      calib_mse_increase_pct, calib_mse_increase_upper_pct, calib_predicted_speedup,
                      test_mse_increase_pct):
    return (f"spec_mse_budget:{spec_mse_budget:g}, calib_windows:{calib_windows}, calib_s:{calib_s:.1f}, "
            f"chosen_sigma:{chosen_sigma:g}, chosen_k:{chosen_k}, calib_acceptance_pct:{calib_acceptance_pct:.2f}, "
            f"calib_mse_increase_pct:{calib_mse_increase_pct:.3f}, "
            f"calib_mse_increase_upper_pct:{calib_mse_increase_upper_pct:.3f}, "
            f"calib_predicted_speedup:{calib_predicted_speedup:.3f}, test_mse_increase_pct:{test_mse_increase_pct:.3f}")


def _speed_lines(c, c_min, c_max, v, v_min, v_max, prefill, target_prefill, cost_repeats, cost_check,
                 adaptive_fallback_rounds, predicted_speedup):
    return [f"measured_cost_ratio_c:{c:.4f}, verify_cost_v:{v:.4f}, predicted_speedup:{predicted_speedup:.3f}",
            f"c_min:{c_min:.4f}, c_max:{c_max:.4f}, v_min:{v_min:.4f}, v_max:{v_max:.4f}, "
            f"prefill_cost:{prefill:.4f}, target_prefill_cost:{target_prefill:.4f}, cost_repeats:{cost_repeats}, "
            f"cost_check:{cost_check}, adaptive_fallback_rounds:{adaptive_fallback_rounds}"]


def write_speculative_breakdown(path, setting, tracer):
    """Append the SpecTracer totals of a speculative run."""
    t = tracer
    return _append_lines(path, [
        f"setting:{setting}",
        "mode:speculative",
        f"t_draft_total:{t.t_draft_total:.6f}, n_draft_calls:{t.n_draft_calls}",
        f"t_prep_verify_total:{t.t_prep_verify_total:.6f}",
        f"t_target_verify_total:{t.t_target_verify_total:.6f}, "
        f"n_target_verify_calls:{t.n_target_verify_calls}",
        f"t_target_sample_total:{t.t_target_sample_total:.6f}, "
        f"n_target_sample_calls:{t.n_target_sample_calls}",
        f"t_accept_cpu_total:{t.t_accept_cpu_total:.6f}"])


def write_standard_breakdown(path, setting, t_baseline_forward_total, n_baseline_calls,
                             components):
    """Append a target-only breakdown; components maps a name (norm_in, blocks.attn, ...) to
    (total seconds, number of calls of that component)."""
    lines = [f"setting:{setting}",
             "mode:standard",
             f"t_baseline_forward_total:{t_baseline_forward_total:.6f}, "
             f"n_baseline_calls:{n_baseline_calls}"]
    for name, (total, n_calls) in components.items():
        per_call = total / n_calls if n_calls else float("nan")
        lines.append(f"comp_{name}_total:{total:.6f}, per_call_avg:{per_call:.6f}")
    return _append_lines(path, lines)


def write_debug_csv(path, rows, columns):
    """Append debug rows (dicts keyed by the names in `columns`) in one write; the header is written only
    when the file is new, and an existing file with another header is an error."""
    header = ",".join(columns)
    is_new = not os.path.exists(path) or os.path.getsize(path) == 0
    if not is_new:
        with open(path, encoding="utf-8") as f:
            existing = f.readline().rstrip("\n")
        if existing != header:
            raise ValueError(f"{path} has a different header; use another --spec_debug_out")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if is_new:
        writer.writerow(columns)
    writer.writerows([_csv_value(row[name]) for name in columns] for row in rows)
    append_record(path, buffer.getvalue())


def _csv_value(value):
    return f"{value:.10g}" if isinstance(value, float) else value


def write_table(path, columns, rows):
    """Write rows (dicts; a missing column is left empty) as a CSV table with a header, atomically."""
    def write(temporary):
        with open(temporary, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
    atomic_write(path, write)


def parse_summary(path):
    """Records of a summary (or breakdown) file as dicts: {'setting': str, key: int|float|str}."""
    with open(path, encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    records = []
    for block in blocks:
        lines = block.strip("\n").splitlines()
        if not lines:
            continue
        record = {"setting": lines[0].removeprefix("setting:")}
        for line in lines[1:]:
            for field in line.split(", "):
                key, _, value = field.partition(":")
                record[key] = _parse_value(value)
        records.append(record)
    return records


def _parse_value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text

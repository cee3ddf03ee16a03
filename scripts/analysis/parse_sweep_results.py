"""Summarise speculative-decoding sweeps made by scripts/sweep.py: a CSV, plots, a markdown table and
the fastest setting within an MSE budget, per sweep folder.

    python scripts/analysis/parse_sweep_results.py [DIR ...] [--markdown FILE] [--mse_budget 1% 5%]

DIR defaults to every sweep_results_* folder in the working directory. Every point folder of DIR
(DIR/<point>/point.json, written for the whole grid when a sweep starts) is one row; a finished point
gives the last record of its result_inference_summary.txt (read with utils.records.parse_summary,
by key name: unknown keys are kept, missing ones left empty). Points not run, unfinished (interrupted
or failed) or with a truncated record are listed as missing. Target-only points (no
--use_speculative) give the reference MSE of their horizon and batch size when a record has no
baseline_mse.

    DIR/sweep_summary.csv                 one row per point ('' where a value is missing)
    DIR/acceptance_vs_sigma.png           acceptance % vs sigma, a line per K; a panel per mode and bias
    DIR/speedup_vs_k.png                  measured (solid) and predicted (dashed) speedup vs K, a line per
                                          mode; a panel per batch size
    DIR/mse_vs_target_vs_acceptance.png   MSE between speculative and target-only outputs vs acceptance
    DIR/speedup_vs_mse.png                speedup vs MSE, the Pareto front (fastest for its MSE) marked and
                                          the target's MSE as a vertical line; a panel per horizon and batch
    DIR/acceptance_heatmap.png            mean acceptance % over sigma x bias; a panel per mode and K
    DIR/measured_vs_predicted_speedup.png measured against predicted speedup, with the diagonal

Plots average the points that differ only in what a panel does not show. --mse_budget B% prints, per
horizon and batch size, the fastest finished setting whose MSE is at most (1 + B/100) x the target's.
"""
import argparse
import glob
import json
import math
import os
import sys
from collections import defaultdict
from statistics import mean

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from cli.parser import OneLineErrorParser  # noqa: E402
from utils.records import SUMMARY_FILE, parse_summary, write_table  # noqa: E402

POINT_FILE, DONE_FILE = "point.json", "done"
# run.py flags of a point that name a setting, as record keys (the record's own key wins when it has one)
POINT_KEYS = {"--test_pred_len": "test_pred_len", "--batch_size": "batch_size", "--rollout": "rollout",
              "--spec_accept_mode": "accept_mode", "--spec_k": "spec_k", "--spec_sigma": "spec_sigma",
              "--spec_accept_bias": "spec_accept_bias"}
COLUMNS = ["point", "status", "mode", "test_pred_len", "batch_size", "rollout", "spec_k", "accept_mode",
           "spec_sigma", "spec_accept_bias", "draft_stochastic", "spec_adaptive",
           "accepted", "attempted", "acceptance_pct", "target_calls", "target_calls_per_forecast", "draft_calls",
           "patches_per_target_call", "residual_fallbacks", "mse", "mae", "target_mse", "mse_increase_pct",
           "mse_vs_target", "total_gen_time_s", "per_batch_s", "baseline_per_batch_s", "speedup",
           "measured_cost_ratio_c", "verify_cost_v", "predicted_speedup", "pareto"]
UNLISTED = {"setting", "speculative"}  # row keys the CSV leaves out
REQUIRED = ("mode", "mse", "mae", "per_batch_s")
REQUIRED_SPECULATIVE = ("acceptance_pct", "patches_per_target_call", "spec_k")
REQUIRED_COMPARED = ("speedup", "mse_vs_target", "predicted_speedup")  # with --spec_compare_baseline
GROUP = ("test_pred_len", "batch_size")

# (header, row field, format) of the markdown table
TABLE = [("horizon", "test_pred_len", "{}"), ("batch", "batch_size", "{}"), ("rollout", "rollout", "{}"),
         ("K", "spec_k", "{}"), ("mode", "accept_mode", "{}"), ("sigma", "spec_sigma", "{:g}"),
         ("bias", "spec_accept_bias", "{:g}"), ("accept %", "acceptance_pct", "{:.1f}"),
         ("patches/call", "patches_per_target_call", "{:.2f}"), ("MSE", "mse", "{:.4f}"),
         ("MSE +%", "mse_increase_pct", "{:+.2f}"), ("MSE vs target", "mse_vs_target", "{:.2e}"),
         ("speedup", "speedup", "{:.2f}"), ("predicted", "predicted_speedup", "{:.2f}"), ("Pareto", "pareto", "{}")]


def number(text):
    """A flag value as the record would hold it: int, float or the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


# ---------------------------------------------------------------- reading a sweep

def record_problem(record, flags):
    """Why a point's last record is unusable ('' when it is complete)."""
    required = REQUIRED
    if flags.get("--use_speculative"):
        required += REQUIRED_SPECULATIVE + (REQUIRED_COMPARED if flags.get("--spec_compare_baseline") else ())
    missing = [key for key in required if record.get(key, "") == ""]
    empty = [key for key, value in record.items() if value == ""]
    if missing or empty:
        return f"truncated record (missing {', '.join(missing + empty)})"
    return ""


def load_point(folder):
    """One row: the point's flags, its status ('finished', 'not run', 'unfinished', 'truncated ...') and,
    when finished, the fields of its last record."""
    row = {"point": os.path.basename(folder), "speculative": False}
    try:
        flags = point_flags(folder)
    except ValueError as error:
        row["status"] = f"damaged {POINT_FILE} ({error})"
        return row
    row["speculative"] = bool(flags.get("--use_speculative"))
    row.update({key: number(flags[flag]) for flag, key in POINT_KEYS.items() if flag in flags})
    summary = os.path.join(folder, SUMMARY_FILE)
    try:
        records = parse_summary(summary) if os.path.isfile(summary) else []
    except ValueError as error:  # binary or not UTF-8
        records, row["status"] = [], f"unreadable {SUMMARY_FILE} ({error})"
    if not os.path.isfile(os.path.join(folder, DONE_FILE)):
        row["status"] = "unfinished" if os.path.exists(os.path.join(folder, "run.log")) else "not run"
    elif not records:
        row.setdefault("status", f"truncated record (no {SUMMARY_FILE})")
    else:
        row["status"] = record_problem(records[-1], flags) or "finished"
        if row["status"] == "finished":
            row.update(records[-1])
    return row


def point_flags(folder):
    """The flags in a point's point.json; a ValueError when it is not a file that sweep.py wrote."""
    try:
        with open(os.path.join(folder, POINT_FILE), encoding="utf-8") as f:
            flags = json.load(f)["flags"]
    except (OSError, ValueError, KeyError, TypeError) as error:  # unreadable, not JSON, or JSON of another shape
        raise ValueError(f"not written by sweep.py: {type(error).__name__}") from None
    if not isinstance(flags, dict):
        raise ValueError("its flags are not a JSON object")
    return flags


def add_target_mse(rows):
    """target_mse and mse_increase_pct of each finished speculative row: its baseline_mse (the target
    alone on the same batches, with --spec_compare_baseline), else the MSE of the finished target-only
    point of the same horizon and batch size."""
    reference = {tuple(r.get(k) for k in GROUP): r["mse"] for r in rows
                 if r["status"] == "finished" and not r["speculative"]}
    for row in rows:
        target = row.get("baseline_mse") or reference.get(tuple(row.get(k) for k in GROUP))
        if row["speculative"] and row["status"] == "finished" and target:
            row["target_mse"] = target
            row["mse_increase_pct"] = 100 * (row["mse"] / target - 1)


def pareto_front(points):
    """Indices of the (speedup, mse) points that no other point beats: none is at least as fast with
    at most the MSE and strictly better in one of the two."""
    def beaten(a, b):
        return b[0] >= a[0] and b[1] <= a[1] and b != a
    return [i for i, p in enumerate(points) if not any(beaten(p, q) for q in points)]


def compared(rows):
    """Finished speculative rows with a measured speedup and an MSE."""
    return [r for r in rows if r["speculative"] and r["status"] == "finished"
            and is_number(r.get("speedup")) and is_number(r.get("mse"))]


def groups(rows):
    """{(horizon, batch size): rows}, sorted."""
    out = defaultdict(list)
    for row in rows:
        out[tuple(row.get(k) for k in GROUP)].append(row)
    return dict(sorted(out.items(), key=lambda item: str(item[0])))


def mark_pareto(rows):
    for group in groups(compared(rows)).values():
        for i in pareto_front([(r["speedup"], r["mse"]) for r in group]):
            group[i]["pareto"] = "*"


def load_rows(folder):
    """Every point of a sweep folder, in name order, with target MSE and Pareto marks."""
    points = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(folder, "*", POINT_FILE)))
    rows = [load_point(p) for p in points]
    add_target_mse(rows)
    mark_pareto(rows)
    return rows


def fastest_within(rows, budget_pct):
    """{(horizon, batch): (target MSE or None, fastest row with MSE <= (1 + budget) x target MSE, or None)}."""
    out = {}
    for key, group in groups(compared(rows)).items():
        target = group[0].get("target_mse")
        inside = [r for r in group if target and r["mse"] <= target * (1 + budget_pct / 100)]
        out[key] = (target, max(inside, key=lambda r: r["speedup"]) if inside else None)
    return out


def setting_text(row):
    return ", ".join(f"{name} {row[key]}" for name, key in (("rollout", "rollout"), ("mode", "accept_mode"),
                                                             ("K", "spec_k"), ("sigma", "spec_sigma"),
                                                             ("bias", "spec_accept_bias")) if key in row)


def budget_report(rows, budget_pct):
    lines = [f"fastest within +{budget_pct:g}% of the target's MSE:"]
    for (horizon, batch), (target, best) in fastest_within(rows, budget_pct).items():
        head = f"  horizon {horizon}, batch {batch}:"
        if not target:
            lines.append(f"{head} no finished target-only point, no reference MSE")
        elif best is None:
            lines.append(f"{head} none (target MSE {target:.4f})")
        else:
            lines.append(f"{head} {setting_text(best)}: speedup {best['speedup']:.2f}, MSE {best['mse']:.4f} "
                         f"({best['mse_increase_pct']:+.2f}% vs target {target:.4f}) [{best['point']}]"
                         + (" - slower than the target alone" if best["speedup"] < 1 else ""))
    return "\n".join(lines)


def missing_report(rows):
    missing = [r for r in rows if r["status"] != "finished"]
    if not missing:
        return f"all {len(rows)} points finished"
    listed = "\n".join(f"  {r['point']}: {r['status']}" for r in missing[:20])
    more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
    return f"{len(rows) - len(missing)} of {len(rows)} points finished; missing:\n{listed}{more}"


# ---------------------------------------------------------------- outputs

def write_csv(rows, path):
    """COLUMNS, then every other key of the records in name order; the setting string and the speculative mark
    are left out."""
    extra = sorted({key for row in rows for key in row} - set(COLUMNS) - UNLISTED)
    write_table(path, COLUMNS + extra, [{key: value for key, value in row.items() if key not in UNLISTED}
                                        for row in rows])


def markdown_table(rows):
    lines = ["| " + " | ".join(header for header, _, _ in TABLE) + " |",
             "|" + "|".join("---" for _ in TABLE) + "|"]
    for row in rows:
        if row["speculative"] and row["status"] == "finished":
            lines.append("| " + " | ".join(_cell(row.get(field, ""), fmt) for _, field, fmt in TABLE) + " |")
    return "\n".join(lines)


def _cell(value, fmt):
    return "-" if value == "" else fmt.format(value)


def mean_by(rows, keys, value):
    """{tuple of the keys' values: mean of `value`} over the rows where `value` is a number."""
    groups_ = defaultdict(list)
    for row in rows:
        if is_number(row.get(value)):
            groups_[tuple(row.get(key) for key in keys)].append(row[value])
    return {group: mean(values) for group, values in groups_.items()}


def _panels(n_rows, n_cols):
    return plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.5 * n_rows), squeeze=False)


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _values(rows, key):
    return sorted({row[key] for row in rows if row.get(key, "") != ""}, key=str) or [""]


def plot_acceptance_vs_sigma(rows, path):
    modes, biases, ks = _values(rows, "accept_mode"), _values(rows, "spec_accept_bias"), _values(rows, "spec_k")
    means = mean_by(rows, ("accept_mode", "spec_accept_bias", "spec_k", "spec_sigma"), "acceptance_pct")
    fig, axes = _panels(len(modes), len(biases))
    for i, mode in enumerate(modes):
        for j, bias in enumerate(biases):
            ax = axes[i][j]
            for k in ks:
                points = sorted((s, a) for (m, b, kk, s), a in means.items() if (m, b, kk) == (mode, bias, k))
                if points:
                    ax.plot(*zip(*points), marker="o", label=f"K={k}")
            ax.set(title=f"{mode}, bias {bias}", xlabel="sigma", ylabel="acceptance %", ylim=(-2, 102))
            _legend(ax)
    _save(fig, path)


def plot_speedup_vs_k(rows, path):
    timed = compared(rows)
    batches, modes = _values(timed, "batch_size"), _values(timed, "accept_mode")
    curves = [(field, style, label, mean_by(timed, ("batch_size", "accept_mode", "spec_k"), field))
              for field, style, label in (("speedup", "-", "measured"), ("predicted_speedup", "--", "predicted"))]
    fig, axes = _panels(1, len(batches))
    for ax, batch in zip(axes[0], batches):
        for n, mode in enumerate(modes):
            for _, style, label, means in curves:
                points = sorted((k, s) for (b, m, k), s in means.items() if (b, m) == (batch, mode))
                if points:
                    ax.plot(*zip(*points), style, color=f"C{n}", marker="o", label=f"{mode} {label}")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(title=f"batch size {batch}", xlabel="K", ylabel="speedup vs target alone")
        _legend(ax)
    _save(fig, path)


def plot_mse_vs_acceptance(rows, path):
    fig, axes = _panels(1, 1)
    ax = axes[0][0]
    for n, mode in enumerate(_values(rows, "accept_mode")):
        points = [(r["acceptance_pct"], r["mse_vs_target"]) for r in rows if r.get("accept_mode") == mode
                  and is_number(r.get("acceptance_pct")) and is_number(r.get("mse_vs_target"))]
        if points:
            ax.scatter(*zip(*points), color=f"C{n}", label=mode)
    ax.set(xlabel="acceptance %", ylabel="MSE(speculative, target alone)")
    _legend(ax)
    _save(fig, path)


def plot_speedup_vs_mse(rows, path):
    by_group = groups(compared(rows)) or {("", ""): []}
    fig, axes = _panels(1, len(by_group))
    for ax, ((horizon, batch), group) in zip(axes[0], by_group.items()):
        for n, mode in enumerate(_values(group, "accept_mode")):
            points = [(r["mse"], r["speedup"]) for r in group if r.get("accept_mode") == mode]
            if points:
                ax.scatter(*zip(*points), color=f"C{n}", alpha=0.6, label=mode)
        front = sorted((r["mse"], r["speedup"]) for r in group if r.get("pareto"))
        if front:
            ax.plot(*zip(*front), "k-", marker="*", markersize=10, label="Pareto front")
        if group and group[0].get("target_mse"):
            ax.axvline(group[0]["target_mse"], color="grey", linestyle=":", label="target alone")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(title=f"horizon {horizon}, batch {batch}", xlabel="MSE", ylabel="speedup vs target alone")
        _legend(ax)
    _save(fig, path)


def plot_acceptance_heatmap(rows, path):
    modes, ks = _values(rows, "accept_mode"), _values(rows, "spec_k")
    sigmas, biases = _values(rows, "spec_sigma"), _values(rows, "spec_accept_bias")
    means = mean_by(rows, ("accept_mode", "spec_k", "spec_sigma", "spec_accept_bias"), "acceptance_pct")
    fig, axes = _panels(len(modes), len(ks))
    for i, mode in enumerate(modes):
        for j, k in enumerate(ks):
            ax = axes[i][j]
            grid = [[means.get((mode, k, s, b), math.nan) for s in sigmas] for b in biases]
            image = ax.imshow(grid, origin="lower", vmin=0, vmax=100, cmap="viridis", aspect="auto")
            for y, line in enumerate(grid):
                for x, value in enumerate(line):
                    if not math.isnan(value):
                        ax.text(x, y, f"{value:.0f}", ha="center", va="center", color="w", fontsize="small")
            ax.set(title=f"{mode}, K={k}", xlabel="sigma", ylabel="bias", xticks=range(len(sigmas)),
                   xticklabels=sigmas, yticks=range(len(biases)), yticklabels=biases)
            fig.colorbar(image, ax=ax, label="acceptance %")
    _save(fig, path)


def plot_measured_vs_predicted(rows, path):
    timed = [r for r in compared(rows) if is_number(r.get("predicted_speedup"))]
    fig, axes = _panels(1, 1)
    ax = axes[0][0]
    for n, batch in enumerate(_values(timed, "batch_size")):
        points = [(r["predicted_speedup"], r["speedup"]) for r in timed if r.get("batch_size") == batch]
        if points:
            ax.scatter(*zip(*points), color=f"C{n}", label=f"batch {batch}")
    values = [v for r in timed for v in (r["speedup"], r["predicted_speedup"])] or [0, 1]
    ax.plot([min(values), max(values)], [min(values), max(values)], "k--", linewidth=0.8, label="measured = predicted")
    ax.set(xlabel="predicted speedup", ylabel="measured speedup")
    _legend(ax)
    _save(fig, path)


PLOTS = {"acceptance_vs_sigma.png": plot_acceptance_vs_sigma, "speedup_vs_k.png": plot_speedup_vs_k,
         "mse_vs_target_vs_acceptance.png": plot_mse_vs_acceptance, "speedup_vs_mse.png": plot_speedup_vs_mse,
         "acceptance_heatmap.png": plot_acceptance_heatmap,
         "measured_vs_predicted_speedup.png": plot_measured_vs_predicted}


def analyse(folder):
    """Write the CSV and the plots of one sweep folder; returns its rows."""
    rows = load_rows(folder)
    write_csv(rows, os.path.join(folder, "sweep_summary.csv"))
    finished = [r for r in rows if r["speculative"] and r["status"] == "finished"]
    if finished:
        for name, plot in PLOTS.items():
            plot(finished, os.path.join(folder, name))
    return rows


def budget_pct(text):
    """'1%' or '1' -> 1.0 (percent of the target's MSE)."""
    try:
        pct = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (e.g. 1%)") from None
    if not pct >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a budget is >= 0%")
    return pct


def main(argv=None):
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", help="sweep folders (default: ./sweep_results_*)")
    parser.add_argument("--markdown", help="also write the markdown tables to this file")
    parser.add_argument("--mse_budget", nargs="+", type=budget_pct, default=[], metavar="PCT",
                        help="print the fastest setting with MSE within +PCT%% of the target's (e.g. 1%% 5%%)")
    args = parser.parse_args(argv)
    folders = args.dirs or sorted(d for d in glob.glob("sweep_results_*") if os.path.isdir(d))
    if not folders:
        parser.error("no sweep folder given and no sweep_results_* folder here")
    for folder in folders:
        if not os.path.isdir(folder):
            parser.error(f"{folder}: no such folder")
    sections = []
    for folder in folders:
        rows = analyse(folder)
        if not rows:
            print(f"{folder}: no point folders ({POINT_FILE}); not a sweep made by scripts/sweep.py?", file=sys.stderr)
            continue
        written = ", ".join(PLOTS) if any(r["speculative"] and r["status"] == "finished" for r in rows) else "no plots"
        print(f"{folder}: {missing_report(rows)}\n  -> sweep_summary.csv, {written}", file=sys.stderr)
        budgets = "\n".join(budget_report(rows, pct) for pct in args.mse_budget)
        sections.append(f"### {folder}\n\n{markdown_table(rows)}\n" + (f"\n{budgets}\n" if budgets else ""))
    text = "\n".join(sections)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()

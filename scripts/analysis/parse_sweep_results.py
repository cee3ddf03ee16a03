"""Summarise speculative-decoding sweeps: a CSV, three plots and a markdown table per sweep folder.

    python scripts/analysis/parse_sweep_results.py [DIR ...] [--markdown FILE]

DIR defaults to every sweep_results_* folder in the working directory (made by the sweep scripts in
scripts/supervised/rolling_forecast/spec_decoding_tests/). The speculative records of
DIR/result_inference_summary.txt (read with utils.spec_report.parse_summary; target-only records
are skipped) give:

    DIR/sweep_summary.csv                 one row per record, the COLUMNS below ('' where a record
                                          has no such field, e.g. no baseline comparison)
    DIR/acceptance_vs_sigma.png           acceptance % vs sigma, a line per K; a panel per mode and bias
    DIR/speedup_vs_k.png                  measured (solid) and predicted (dashed) speedup vs K, a line
                                          per mode; a panel per batch size
    DIR/mse_vs_target_vs_acceptance.png   MSE between speculative and target-only outputs vs acceptance

Plots average the records that differ only in what a panel does not show (e.g. the horizon).
The markdown table (one row per record, in file order) goes to stdout and, with --markdown, to FILE.
"""
import argparse
import csv
import glob
import math
import os
import sys
from collections import defaultdict
from statistics import mean

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from utils.spec_report import SUMMARY_FILE, parse_summary  # noqa: E402

COLUMNS = ["setting", "test_pred_len", "batch_size", "spec_k", "accept_mode", "spec_sigma",
           "spec_accept_bias", "draft_stochastic", "spec_adaptive", "rollout",
           "accepted", "attempted", "acceptance_pct", "target_calls", "target_calls_per_forecast", "draft_calls",
           "patches_per_target_call", "residual_fallbacks", "mse", "mae", "mse_vs_target",
           "total_gen_time_s", "per_batch_s", "baseline_per_batch_s", "speedup",
           "measured_cost_ratio_c", "verify_cost_v", "predicted_speedup"]

# (header, record field, format) of the markdown table
TABLE = [("horizon", "test_pred_len", "{}"), ("batch", "batch_size", "{}"), ("K", "spec_k", "{}"),
         ("mode", "accept_mode", "{}"), ("sigma", "spec_sigma", "{:g}"), ("bias", "spec_accept_bias", "{:g}"),
         ("accept %", "acceptance_pct", "{:.1f}"), ("patches/call", "patches_per_target_call", "{:.2f}"),
         ("MSE", "mse", "{:.4f}"), ("MSE vs target", "mse_vs_target", "{:.2e}"),
         ("speedup", "speedup", "{:.2f}"), ("predicted", "predicted_speedup", "{:.2f}")]

PLOTS = ("acceptance_vs_sigma.png", "speedup_vs_k.png", "mse_vs_target_vs_acceptance.png")


def load_rows(folder):
    """The speculative records of a sweep folder, as dicts with the COLUMNS keys ('' if absent)."""
    records = parse_summary(os.path.join(folder, SUMMARY_FILE))
    return [{name: record.get(name, "") for name in COLUMNS}
            for record in records if record.get("mode") == "speculative"]


def write_csv(rows, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows):
    lines = ["| " + " | ".join(header for header, _, _ in TABLE) + " |",
             "|" + "|".join("---" for _ in TABLE) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[field], fmt) for _, field, fmt in TABLE) + " |")
    return "\n".join(lines)


def _cell(value, fmt):
    return "-" if value == "" else fmt.format(value)


# ---------------------------------------------------------------- plots

def _is_number(value):
    return isinstance(value, (int, float)) and not math.isnan(value)


def mean_by(rows, keys, value):
    """{tuple of the keys' values: mean of `value`} over the rows where `value` is a number."""
    groups = defaultdict(list)
    for row in rows:
        if _is_number(row[value]):
            groups[tuple(row[key] for key in keys)].append(row[value])
    return {group: mean(values) for group, values in groups.items()}


def _panels(n_rows, n_cols):
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.5 * n_rows), squeeze=False)
    return fig, axes


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _values(rows, key):
    return sorted({row[key] for row in rows if row[key] != ""})


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
            ax.set(title=f"{mode}, bias {bias:g}", xlabel="sigma", ylabel="acceptance %", ylim=(-2, 102),
                   xticks=_values(rows, "spec_sigma"))
            _legend(ax)
    _save(fig, path)


def plot_speedup_vs_k(rows, path):
    compared = [row for row in rows if _is_number(row["speedup"])]  # runs with --spec_compare_baseline
    batches, modes = _values(compared, "batch_size") or [""], _values(rows, "accept_mode")
    curves = [(field, style, label, mean_by(compared, ("batch_size", "accept_mode", "spec_k"), field))
              for field, style, label in (("speedup", "-", "measured"), ("predicted_speedup", "--", "predicted"))]
    fig, axes = _panels(1, len(batches))
    for ax, batch in zip(axes[0], batches):
        for n, mode in enumerate(modes):
            for field, style, label, means in curves:
                points = sorted((k, s) for (b, m, k), s in means.items() if (b, m) == (batch, mode))
                if points:
                    ax.plot(*zip(*points), style, color=f"C{n}", marker="o", label=f"{mode} {label}")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(title=f"batch size {batch}" if compared else "no run with --spec_compare_baseline",
               xlabel="K", ylabel="speedup vs target alone", xticks=_values(rows, "spec_k"))
        _legend(ax)
    _save(fig, path)


def plot_mse_vs_acceptance(rows, path):
    fig, axes = _panels(1, 1)
    ax = axes[0][0]
    for n, mode in enumerate(_values(rows, "accept_mode")):
        points = [(r["acceptance_pct"], r["mse_vs_target"]) for r in rows
                  if r["accept_mode"] == mode and _is_number(r["acceptance_pct"]) and _is_number(r["mse_vs_target"])]
        if points:
            ax.scatter(*zip(*points), color=f"C{n}", label=mode)
    ax.set(xlabel="acceptance %", ylabel="MSE(speculative, target alone)")
    _legend(ax)
    _save(fig, path)


def analyse(folder):
    """Write the CSV and the plots of one sweep folder; returns its rows."""
    rows = load_rows(folder)
    write_csv(rows, os.path.join(folder, "sweep_summary.csv"))
    if rows:
        for plot, name in zip((plot_acceptance_vs_sigma, plot_speedup_vs_k, plot_mse_vs_acceptance), PLOTS):
            plot(rows, os.path.join(folder, name))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", help="sweep folders (default: ./sweep_results_*)")
    parser.add_argument("--markdown", help="also write the markdown tables to this file")
    args = parser.parse_args(argv)
    folders = args.dirs or sorted(d for d in glob.glob("sweep_results_*") if os.path.isdir(d))
    if not folders:
        parser.error("no sweep folder given and no sweep_results_* folder here")
    sections = []
    for folder in folders:
        if not os.path.isfile(os.path.join(folder, SUMMARY_FILE)):
            print(f"{folder}: no {SUMMARY_FILE} (no run finished yet?); skipped", file=sys.stderr)
            continue
        rows = analyse(folder)
        print(f"{folder}: {len(rows)} speculative records -> sweep_summary.csv"
              + (", " + ", ".join(PLOTS) if rows else ""), file=sys.stderr)
        sections.append(f"### {folder}\n\n{markdown_table(rows)}\n")
    text = "\n".join(sections)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()

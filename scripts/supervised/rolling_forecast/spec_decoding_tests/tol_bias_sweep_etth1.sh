#!/usr/bin/env bash
# Tolerance acceptance on ETTh1: sigma (per-value tolerance, z-units) x bias only, target timer_xl_etth1.sh with its
# distilled 0.25x stochastic draft (both made first by their scripts when missing). Default grid: MODES=tolerance
# KS=3 SIGMAS="0.1 0.3 0.5 0.7 1.0" BIASES="1 1.5 2 3 5" HORIZONS=720 BATCHES=32 (25 runs) -> sweep_results_tol_bias_etth1/
# Env lists (space-separated) replace the grid: HORIZONS, BATCHES, MODES (tolerance lossless), KS, SIGMAS, BIASES;
# MAX_BATCHES (--test_max_batches of every run; default 100 at batch size 1, 20 otherwise; "all" = whole split),
# SWEEP_DIR (output folder, relative to the repository root), EXTRA_ARGS="..." (added to every run.py call); TARGET_FLAGS, TARGET_CKPT,
# DISTILLED_CKPT test other checkpoints (scripts/lib.sh, spec_setup).
# Each grid point is one --use_speculative --spec_compare_baseline run (speculative vs target alone, same batches),
# started inside the output folder: its result_inference_summary.txt / _breakdown.txt / result_long_term_forecast.txt
# gather the records (a rerun appends), commands.txt lists every command run.
# Analysis (CSV, plots, markdown table): python scripts/analysis/parse_sweep_results.py <output folder>
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
: "${MODES:=tolerance}" "${KS:=3}" "${SIGMAS:=0.1 0.3 0.5 0.7 1.0}" "${BIASES:=1 1.5 2 3 5}" "${HORIZONS:=720}" "${BATCHES:=32}"
spec_sweep tol_bias_etth1 etth1

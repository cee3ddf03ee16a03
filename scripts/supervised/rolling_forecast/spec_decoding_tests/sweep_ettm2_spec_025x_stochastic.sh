#!/usr/bin/env bash
# Full sweep on ettm2: horizon x batch size x accept mode x K x sigma x bias, target timer_xl_ettm2.sh with its
# distilled 0.25x stochastic draft (both made first by their scripts when missing, see
# test_ettm2_timer_vs_spec_025x_stochastic.sh). Default grid: HORIZONS="336 720" BATCHES="1 32"
# MODES="tolerance lossless" KS="1 2 3 4" SIGMAS="0.1 0.3 0.7" BIASES="1 2" (192 runs) -> sweep_results_ettm2_spec_025x_stochastic/
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
spec_sweep ettm2_spec_025x_stochastic ettm2

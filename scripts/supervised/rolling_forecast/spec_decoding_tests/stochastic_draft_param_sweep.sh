#!/usr/bin/env bash
# Lossless speculative sampling with the stochastic draft (q = N(mu_q, exp(logvar_q)), the draft's own variance):
# sigma (width of the target p = N(mu_p, sigma^2)) x bias, on DATA (default etth1; any of etth1 etth2 ettm1 ettm2
# traffic weather), target timer_xl_<DATA>.sh with its distilled 0.25x stochastic draft (both made first by their
# scripts when missing). Default grid: MODES=lossless KS=3 SIGMAS="0.1 0.3 0.5 0.7 1.0" BIASES="1 1.5 2 3"
# HORIZONS=720 BATCHES=32 (20 runs) -> sweep_results_stochastic_draft_params_<DATA>/
# At small sigma almost nothing is accepted by construction (a patch has P*C values); that is expected.
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
DATA=${DATA:-etth1}
: "${MODES:=lossless}" "${KS:=3}" "${SIGMAS:=0.1 0.3 0.5 0.7 1.0}" "${BIASES:=1 1.5 2 3}" "${HORIZONS:=720}" "${BATCHES:=32}"
spec_sweep "stochastic_draft_params_$DATA" "$DATA"

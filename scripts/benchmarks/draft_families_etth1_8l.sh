#!/usr/bin/env bash
# The three draft families against the 8-layer ETTh1 Timer-XL target, each in its own speedup.py run:
# the 0.25x Timer-XL draft (stochastic), the 0.25x Timer draft (point forecaster) and TTM (a one-call
# stochastic draft, 4 patches per call). Horizon 720, batch 1 and 32, K 1-4 and adaptive, tolerance
# sigma 0.3, both rollouts. The target and the drafts are made first by their scripts when their
# checkpoints are missing. Writes benchmark_results/etth1_8l_<family>/speedup.{csv,png}; each run prints the
# two models' parameter counts and its markdown table.
# EXTRA_ARGS="..." is appended to every run.py call (the training scripts run from here); BENCH_ARGS="..."
# to every speedup.py call and overrides its flags here, e.g. BENCH_ARGS="--quick" or BENCH_ARGS="--device cuda".
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ensure_data ETTh1
read -r -a BENCH_ARGS <<< "${BENCH_ARGS:-}"

read_flags TARGET scripts/flags/etth1_data.flags scripts/flags/etth1_8l_target.flags
read_flags TIMER_XL_DRAFT scripts/flags/etth1_data.flags scripts/flags/etth1_8l_draft_025x.flags
read_flags TIMER_DRAFT scripts/flags/etth1_data.flags scripts/flags/etth1_8l_timer_draft_025x.flags
read_flags TTM_DRAFT scripts/flags/etth1_data.flags scripts/flags/ttm_sizes.flags scripts/flags/etth1_8l_ttm_draft.flags
DISTILL=scripts/distillation/updated_distillation
target_ckpt=$(checkpoint_of "${TARGET[@]}")
timer_xl_draft_ckpt=$(checkpoint_of "${TIMER_XL_DRAFT[@]}")
timer_draft_ckpt=$(checkpoint_of "${TIMER_DRAFT[@]}")
ttm_draft_ckpt=$(checkpoint_of "${TTM_DRAFT[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh
make_if_missing "$timer_xl_draft_ckpt" $DISTILL/etth1_8l_timer_xl_draft_from_target_etth1_8l_stochastic.sh
make_if_missing "$timer_draft_ckpt" $DISTILL/etth1_8l_timer_draft_from_target_etth1_8l.sh
make_if_missing "$ttm_draft_ckpt" $DISTILL/etth1_8l_ttm_draft_from_target_etth1_8l_stochastic.sh

# speedup.py takes the target's run.py flags (model and data), its own flags, then the draft's.
read_flags DATA scripts/flags/etth1_data.flags
read_flags TTM_SIZES scripts/flags/ttm_sizes.flags
BENCH=(
  --target_ckpt "$target_ckpt"
  "${DATA[@]}"
  # the target's sizes
  --d_model 1024
  --n_heads 8
  --d_ff 2048
  --e_layers 8
  # the grid
  --batch_sizes 1 32
  --horizons 720
  --ks 1 2 3 4
  --sigmas 0.3
  --n_batches 8
)

echo "== the 0.25x Timer-XL draft"
"$PY" scripts/benchmarks/speedup.py "${BENCH[@]}" \
  --draft_ckpt "$timer_xl_draft_ckpt" \
  --spec_draft_model timer_xl_draft \
  --draft_stochastic \
  --out_dir benchmark_results/etth1_8l_timer_xl_draft \
  "${BENCH_ARGS[@]}"
echo "== the 0.25x Timer draft"
"$PY" scripts/benchmarks/speedup.py "${BENCH[@]}" \
  --draft_ckpt "$timer_draft_ckpt" \
  --spec_draft_model timer_draft \
  --out_dir benchmark_results/etth1_8l_timer_draft \
  "${BENCH_ARGS[@]}"
echo "== the TTM draft (one call per round)"
"$PY" scripts/benchmarks/speedup.py "${BENCH[@]}" \
  --draft_ckpt "$ttm_draft_ckpt" \
  --spec_draft_model ttm \
  --draft_stochastic \
  "${TTM_SIZES[@]}" \
  --out_dir benchmark_results/etth1_8l_ttm \
  "${BENCH_ARGS[@]}"

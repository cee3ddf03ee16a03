#!/usr/bin/env bash
# Full sweep on ETTm1: rollout x horizon x batch size x accept mode x K x sigma x bias (384 runs, plus 4 target-only).
# Every grid point is one run.py call in its own folder OUT/<point>/ (its result files, run.log and, once it
# finished, a `done` marker); a rerun skips finished points and redoes unfinished ones (scripts/sweep.py).
# EXTRA_ARGS="..." is appended to every run.py call; SWEEP_ARGS="--flag value ..." fixes grid axes
# to one value each (flags that are no axis of a sweep are ignored there), e.g.
#   SWEEP_ARGS="--rollout sliding --batch_size 32" EXTRA_ARGS="--test_max_batches 2" bash scripts/supervised/rolling_forecast/spec_decoding_tests/sweep_ettm1_spec_025x_stochastic.sh
# Analysis (CSV, plots, table, fastest setting within +1%/+5% of the target's MSE):
#   python scripts/analysis/parse_sweep_results.py sweep_results_ettm1_spec_025x_stochastic --mse_budget 1% 5%
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
ensure_data ETTm1

read_flags TARGET scripts/flags/ettm1_data.flags scripts/flags/ettm1_target.flags
read_flags DRAFT scripts/flags/ettm1_data.flags scripts/flags/ettm1_draft_025x.flags
# run.py starts inside each point's folder: the paths of the checkpoints and of the data are absolute.
CHECKPOINTS=(--checkpoints "$PWD/checkpoints/")
target_ckpt=$(checkpoint_of "${TARGET[@]}" "${CHECKPOINTS[@]}")
draft_ckpt=$(checkpoint_of "${DRAFT[@]}" "${CHECKPOINTS[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_ettm1.sh
make_if_missing "$draft_ckpt" scripts/distillation/updated_distillation/ettm1_timer_xl_draft_from_target_ettm1_stochastic.sh

TEST=(
  "${TARGET[@]}"
  --root_path "$PWD/dataset/ETT-small/"
  --is_training 0
  "${CHECKPOINTS[@]}"
  --test_dir "$(setting_of "${TARGET[@]}")"
  --test_max_batches 20
  --trace_inference_breakdown
)
SPECULATIVE=(
  --use_speculative
  --spec_draft_ckpt "$draft_ckpt"
  --draft_stochastic
  --spec_compare_baseline
)

OUT=sweep_results_ettm1_spec_025x_stochastic
# the target alone: the reference MSE of each horizon and batch size
sweep "$OUT" \
  --test_pred_len 336 720 \
  --batch_size 1 32 \
  -- "${TEST[@]}"
# speculative decoding, timed against the target alone on the same batches
sweep "$OUT" \
  --rollout sliding cached \
  --test_pred_len 336 720 \
  --batch_size 1 32 \
  --spec_accept_mode tolerance lossless \
  --spec_k 1 2 3 4 \
  --spec_sigma 0.1 0.3 0.7 \
  --spec_accept_bias 1 2 \
  -- "${TEST[@]}" "${SPECULATIVE[@]}"

#!/usr/bin/env bash
# Timer-XL alone vs speculative decoding with the distilled 0.25x stochastic draft, on ETTm1: horizon 720,
# batch 32, K 3, tolerance rule with sigma 0.7 and bias 1. The target and the draft are made first by their
# scripts when their checkpoints are missing (full size: hours on a GPU).
# EXTRA_ARGS="..." is appended to every run.py call and overrides the flags here, e.g.
#   EXTRA_ARGS="--spec_k 2 --spec_sigma 0.3 --test_max_batches 20" bash scripts/supervised/rolling_forecast/spec_decoding_tests/test_ettm1_timer_vs_spec_025x_stochastic.sh
# Appends to result_inference_summary.txt, result_inference_breakdown.txt, result_long_term_forecast.txt and
# spec_decoding_new_stochastic_025x.csv (per-proposal details) in the repository root; the speculative run
# prints its record (accuracy, acceptance, speedup).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
ensure_data ETTm1

read_flags TARGET scripts/flags/ettm1_data.flags scripts/flags/ettm1_target.flags
read_flags DRAFT scripts/flags/ettm1_data.flags scripts/flags/ettm1_draft_025x.flags
target_ckpt=$(checkpoint_of "${TARGET[@]}")
draft_ckpt=$(checkpoint_of "${DRAFT[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_ettm1.sh
make_if_missing "$draft_ckpt" scripts/distillation/updated_distillation/ettm1_timer_xl_draft_from_target_ettm1_stochastic.sh

# Both runs test the target's checkpoint with its flags and these; the speculative run adds its own.
TEST=(
  --is_training 0
  --test_dir "$(setting_of "${TARGET[@]}")"
  --test_pred_len 720
  --batch_size 32
  --trace_inference_breakdown
)
SPECULATIVE=(
  --use_speculative
  --spec_draft_ckpt "$draft_ckpt"
  --draft_stochastic
  --spec_k 3
  --spec_sigma 0.7
  --spec_accept_bias 1.0
  --spec_accept_mode tolerance
  --rollout sliding
  --spec_compare_baseline
  --spec_debug_accept
  --spec_debug_out spec_decoding_new_stochastic_025x.csv
)

echo "== ETTm1: Timer-XL alone"
run_py "${TARGET[@]}" "${TEST[@]}"
echo "== ETTm1: speculative decoding with the 0.25x stochastic draft"
run_py "${TARGET[@]}" "${TEST[@]}" "${SPECULATIVE[@]}"

#!/usr/bin/env bash
# TTM (models/ttm.py, a TinyTimeMixer-style one-call forecaster) on ETTh1, trained as a forecaster of the
# --ttm_patches 4 patches of 96 after each 672-point window (--output_token_len 384 --nonautoregressive: the
# loss sees those 384 points) once unless the checkpoint exists (TRAIN=1 retrains); then the checkpoint is
# tested at horizons 96/192/336/720 (sliding rollout, 4 patches per call). This is the pretrained TTM that
# etth1_ttm_draft_from_target_etth1_stochastic.sh distils into the Timer-XL target.
# EXTRA_ARGS="..." is appended to every run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

read_flags TTM scripts/flags/etth1_data.flags scripts/flags/ttm_sizes.flags scripts/flags/etth1_ttm.flags
train 1 "${TTM[@]}"
setting=$(setting_of "${TTM[@]}")
for horizon in 96 192 336 720; do
  run_py "${TTM[@]}" --is_training 0 --test_dir "$setting" --test_pred_len "$horizon"
done
echo "checkpoint: $(checkpoint_of "${TTM[@]}"); results: result_long_term_forecast.txt"

#!/usr/bin/env bash
# Timer-XL on Weather: train once at horizon 96 unless the checkpoint exists (TRAIN=1 retrains),
# then test that checkpoint at horizons 96/192/336/720 (one-for-all, as in the Timer-XL paper).
# EXTRA_ARGS="..." is appended to every run.py call, e.g. EXTRA_ARGS="--subset_rand_ratio 0.05 --train_epochs 2".
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data weather

read_flags TARGET scripts/flags/weather_data.flags scripts/flags/weather_target.flags
train 1 "${TARGET[@]}"
setting=$(setting_of "${TARGET[@]}")
for horizon in 96 192 336 720; do
  run_py "${TARGET[@]}" --is_training 0 --test_dir "$setting" --test_pred_len "$horizon"
done
echo "checkpoint: $(checkpoint_of "${TARGET[@]}"); results: result_long_term_forecast.txt"

#!/usr/bin/env bash
# Timer (models/timer.py: channel-independent decoder, absolute positions) on ECL at the Timer-XL ECL
# sizes: train once at horizon 96 unless the checkpoint exists (TRAIN=1 retrains), then test that
# checkpoint at horizons 96/192/336/720. EXTRA_ARGS="..." is appended to every run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data electricity

read_flags TARGET scripts/flags/ecl_data.flags scripts/flags/ecl_timer_target.flags
train 1 "${TARGET[@]}"
setting=$(setting_of "${TARGET[@]}")
for horizon in 96 192 336 720; do
  run_py "${TARGET[@]}" --is_training 0 --test_dir "$setting" --test_pred_len "$horizon"
done
echo "checkpoint: $(checkpoint_of "${TARGET[@]}"); results: result_long_term_forecast.txt"

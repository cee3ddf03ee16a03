#!/usr/bin/env bash
# The whole workflow at a small size on CPU (a few minutes on 2 idle cores):
# fetch ETTh1 -> pretrain a draft -> train a Timer-XL target -> distill the draft into the target
# -> speculative decoding (tolerance, lossless, and within an MSE budget of 1% at batch 1) against the target
# alone, and a summary of what it gained.
# The full-size experiments are the scripts under scripts/pretrain, scripts/supervised and scripts/distillation.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
ensure_data ETTh1

# The ETTh1 data of every ETTh1 run; the checkpoints of this small workflow go to their own folder.
read_flags ETTH1 scripts/flags/etth1_data.flags
DATA=(
  "${ETTH1[@]}"
  --valid_last
  --checkpoints ./checkpoints/quickstart/
)
# A deep and narrow target (8 layers of width 128): one target step costs several draft steps even at batch 1.
# The draft is 0.25x its width and 0.125x its depth: d_model 32, 1 head, d_ff 64, 1 layer.
SIZES=(
  --d_model 128
  --n_heads 4
  --d_ff 256
  --e_layers 8
)
DRAFT_DEPTH=(
  --draft_scale_e_layers 0.125
)
TRAIN=(
  --is_training 1
  --batch_size 32
  --train_epochs 2
  --subset_rand_ratio 0.2
  --test_pred_len 96
  --test_max_batches 10
)

echo "== 1/4 pretrain the draft (deterministic) =="
PRETRAIN=(
  --task_name pretrain
  --model timer_xl_draft
  --model_id draft_pretrain_ETTh1_025x
  "${DATA[@]}"
  "${SIZES[@]}"
  "${DRAFT_DEPTH[@]}"
  "${TRAIN[@]}"
  --cosine
  --tmax 2
)
run_py "${PRETRAIN[@]}"
draft_ckpt=$(checkpoint_of "${PRETRAIN[@]}")

echo "== 2/4 train the Timer-XL target =="
TARGET=(
  --task_name forecast
  --model timer_xl
  --model_id ETTh1
  "${DATA[@]}"
  "${SIZES[@]}"
  "${TRAIN[@]}"
  --learning_rate 0.001
)
run_py "${TARGET[@]}"
target_ckpt=$(checkpoint_of "${TARGET[@]}")

echo "== 3/4 distill a stochastic draft from the target, on the target's own 7-patch rollouts =="
DISTILL=(
  --task_name forecast
  --model timer_xl_draft
  --model_id ETTh1_draft_distill_stochastic_from_target_ETTh1
  "${DATA[@]}"
  "${SIZES[@]}"
  "${DRAFT_DEPTH[@]}"
  "${TRAIN[@]}"
  --learning_rate 0.001
  --train_epochs 4
  --subset_rand_ratio 0.5
  --cosine
  --tmax 4
  --distill_vali teacher
  --patience 4
  --distill
  --distill_target_model timer_xl
  --distill_target_ckpt "$target_ckpt"
  --distill_rollout_patches 7
  --adaptation
  --pretrain_model_path "$draft_ckpt"
  --draft_stochastic
)
run_py "${DISTILL[@]}"
distilled_ckpt=$(checkpoint_of "${DISTILL[@]}")

echo "== 4/4 speculative decoding at horizon 720 vs the target alone =="
SPEC=(
  --task_name forecast
  --model timer_xl
  --model_id ETTh1
  "${DATA[@]}"
  "${SIZES[@]}"
  "${DRAFT_DEPTH[@]}"
  --is_training 0
  --test_dir "$(setting_of "${TARGET[@]}")"
  --test_pred_len 720
  --use_speculative
  --spec_draft_ckpt "$distilled_ckpt"
  --draft_stochastic
  --spec_k 3
  --spec_compare_baseline
)
TOLERANCE=(
  --batch_size 8
  --test_max_batches 5
  --rollout sliding
  --spec_accept_mode tolerance
  --spec_sigma 0.7
)
run_py "${SPEC[@]}" "${TOLERANCE[@]}"
# Lossless: the output is distributed as the target sampled with sigma; a distilled draft is sharp (small
# variance), so it is accepted only when sigma is small too.
LOSSLESS=(
  --batch_size 8
  --test_max_batches 5
  --rollout cached
  --spec_accept_mode lossless
  --spec_sigma 0.1
  --target_sample
  --spec_debug_accept
  --spec_debug_out spec_decoding_quickstart_stochastic_025x.csv
)
run_py "${SPEC[@]}" "${LOSSLESS[@]}"
# The last run: batch 1, cached rollout, sigma and K calibrated on validation windows for at most +1% MSE.
BUDGET=(
  --batch_size 1
  --test_max_batches 64
  --rollout cached
  --spec_mse_budget 1
  --spec_calib_windows 64
  --spec_calib_sigmas 0.1 0.2 0.5
  --trace_inference_breakdown
)
run_py "${SPEC[@]}" "${BUDGET[@]}"

echo
echo "Results (appended in $(pwd)): result_long_term_forecast.txt (accuracy), result_inference_summary.txt"
echo "(acceptance, timing, speedup, calibration), result_inference_breakdown.txt (section times),"
echo "spec_decoding_quickstart_stochastic_025x.csv."
echo
echo "What speculative decoding gained (the target alone -> speculative, same rollout, same batches; the last"
echo "line is batch 1 within an MSE budget of 1%):"
"$PY" scripts/analysis/speculative_summary.py

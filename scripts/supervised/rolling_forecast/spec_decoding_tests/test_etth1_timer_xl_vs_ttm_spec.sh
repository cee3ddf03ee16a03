#!/usr/bin/env bash
# Timer-XL alone vs speculative decoding with the distilled stochastic TTM draft on ETTh1. TTM is a one-call
# draft: ONE call per round proposes up to --spec_k patches (--spec_k <= --ttm_patches 4), so c is the cost of
# that call per round. The draft is built from the target's flags plus its own TTM flags. Needs the target
# (timer_xl_etth1.sh) and the distilled TTM (etth1_ttm_draft_from_target_etth1_stochastic.sh); a missing one is
# made first. Env: SPEC_K=3 SPEC_SIGMA=0.3 SPEC_MODE=tolerance HORIZON=720 BATCH=32 MAX_BATCHES=20 ROLLOUT=sliding,
# TARGET_CKPT, DRAFT_CKPT (other checkpoints); EXTRA_ARGS="..." is appended to every run.py call.
# Appends to result_inference_summary.txt, result_inference_breakdown.txt and result_long_term_forecast.txt.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh  # PY, EXTRA_ARGS, ensure_data
ensure_data ETTh1

target_setting=$("$PY" -m utils.setting --task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 \
  --data MultivariateDatasetBenchmark --seq_len 672 --input_token_len 96 --output_token_len 96 \
  --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001)
draft_setting=$("$PY" -m utils.setting --task_name forecast --is_training 1 --model ttm \
  --model_id ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1 --data MultivariateDatasetBenchmark \
  --seq_len 672 --input_token_len 96 --output_token_len 384 --nonautoregressive --ttm_patches 4 \
  --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel --n_vars 7 \
  --batch_size 32 --learning_rate 5e-4 --cosine --tmax 10)
TARGET_CKPT=${TARGET_CKPT:-checkpoints/$target_setting/checkpoint.pth}
DRAFT_CKPT=${DRAFT_CKPT:-checkpoints/$draft_setting/checkpoint.pth}
if [ ! -f "$TARGET_CKPT" ]; then bash scripts/supervised/rolling_forecast/timer_xl_etth1.sh; fi
if [ ! -f "$DRAFT_CKPT" ]; then
  bash scripts/distillation/updated_distillation/etth1_ttm_draft_from_target_etth1_stochastic.sh
fi

echo "== ETTh1: Timer-XL alone, then with the TTM draft (K ${SPEC_K:-3}, sigma ${SPEC_SIGMA:-0.3})"
"$PY" -u run.py --task_name forecast --is_training 0 --model timer_xl --model_id ETTh1 \
  --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv \
  --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96 --test_pred_len "${HORIZON:-720}" \
  --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --use_norm --batch_size "${BATCH:-32}" --num_workers 0 \
  --checkpoints "$(dirname "$(dirname "$TARGET_CKPT")")/" --test_dir "$(basename "$(dirname "$TARGET_CKPT")")" \
  --test_file_name "$(basename "$TARGET_CKPT")" --rollout "${ROLLOUT:-sliding}" \
  --test_max_batches "${MAX_BATCHES:-20}" \
  --use_speculative --spec_draft_model ttm --spec_draft_ckpt "$DRAFT_CKPT" --draft_stochastic \
  --ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel \
  --d_mode mix_channel --n_vars 7 \
  --spec_k "${SPEC_K:-3}" --spec_sigma "${SPEC_SIGMA:-0.3}" --spec_accept_bias 1.0 \
  --spec_accept_mode "${SPEC_MODE:-tolerance}" --spec_compare_baseline --trace_inference_breakdown \
  "${EXTRA_ARGS[@]}"
echo "== last record of result_inference_summary.txt"
awk -v RS= 'END { print }' result_inference_summary.txt

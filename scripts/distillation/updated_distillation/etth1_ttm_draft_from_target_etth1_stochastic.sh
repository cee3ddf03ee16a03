#!/usr/bin/env bash
# Distil a stochastic TTM draft (models/ttm.py, one call forecasts 4 patches) from the fine-tuned Timer-XL
# ETTh1 target, starting from the TTM pretrained by ttm_etth1.sh (head.* -> head_mean.*). The student fits
# the target's own sliding rollout of the 4 patches after each window (exp/exp_distill.py): what its
# proposals are tested against. --d_model/--n_heads/--d_ff/--e_layers are the teacher's sizes; the
# --draft_scale_* factors do not apply to TTM (its sizes are --hidden_dim, --layers, --AP_levels, ...).
# A missing target or pretrained TTM is made first by its script. Skips distillation if the checkpoint
# exists (TRAIN=1 re-distils). Env: TARGET_CKPT, TTM_CKPT (other checkpoints); EXTRA_ARGS="..." is
# appended to every run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh  # PY, EXTRA_ARGS, ensure_data
ensure_data ETTh1

target_setting=$("$PY" -m utils.setting --task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 \
  --data MultivariateDatasetBenchmark --seq_len 672 --input_token_len 96 --output_token_len 96 \
  --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001)
TARGET_CKPT=${TARGET_CKPT:-checkpoints/$target_setting/checkpoint.pth}
if [ ! -f "$TARGET_CKPT" ]; then bash scripts/supervised/rolling_forecast/timer_xl_etth1.sh; fi

ttm_setting=$("$PY" -m utils.setting --task_name forecast --is_training 1 --model ttm --model_id ETTh1 \
  --data MultivariateDatasetBenchmark --seq_len 672 --input_token_len 96 --output_token_len 384 \
  --nonautoregressive --ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 \
  --mode common_channel --d_mode mix_channel --n_vars 7 --batch_size 32 --learning_rate 0.001 --cosine --tmax 10)
TTM_CKPT=${TTM_CKPT:-checkpoints/$ttm_setting/checkpoint.pth}
if [ ! -f "$TTM_CKPT" ]; then bash scripts/supervised/rolling_forecast/ttm_etth1.sh; fi

setting=$("$PY" -m utils.setting --task_name forecast --is_training 1 --model ttm \
  --model_id ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1 --data MultivariateDatasetBenchmark \
  --seq_len 672 --input_token_len 96 --output_token_len 384 --nonautoregressive --ttm_patches 4 \
  --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel --n_vars 7 \
  --batch_size 32 --learning_rate 5e-4 --cosine --tmax 10 "${EXTRA_ARGS[@]}")
if [ "${TRAIN:-0}" = 1 ] || [ ! -f "checkpoints/$setting/checkpoint.pth" ]; then
  "$PY" -u run.py --task_name forecast --is_training 1 --model ttm \
    --model_id ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1 \
    --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv \
    --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 384 --nonautoregressive \
    --test_pred_len 96 --ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 \
    --mode common_channel --d_mode mix_channel --n_vars 7 --dropout 0.1 --use_norm \
    --d_model 1024 --n_heads 8 --d_ff 2048 --e_layers 1 \
    --distill --distill_target_model timer_xl --distill_target_ckpt "$TARGET_CKPT" \
    --adaptation --pretrain_model_path "$TTM_CKPT" --draft_stochastic --draft_nll_var_reg 0.01 \
    --draft_teacher_noise 0.05 --batch_size 32 --learning_rate 5e-4 --cosine --tmax 10 --train_epochs 10 \
    --num_workers 0 "${EXTRA_ARGS[@]}"
fi
echo "checkpoint: checkpoints/$setting/checkpoint.pth"

#!/usr/bin/env bash
# Distil a stochastic TTM draft (models/ttm.py: one call forecasts 4 patches) from the fine-tuned 8-layer ETTh1
# Timer-XL target (timer_xl_etth1_8l.sh), starting from the TTM of ttm_etth1.sh (head.* -> head_mean.*). The
# student fits the target's own rollout of the 4 patches after each window (exp/exp_distill.py): what its
# proposals are tested against. --d_model/--n_heads/--d_ff/--e_layers are the teacher's sizes; the
# --draft_scale_* factors do not apply to TTM (its sizes are --hidden_dim, --layers, --AP_levels, ...).
# The target and the pretrained TTM are made first by their scripts when their checkpoints are missing.
# Skips distillation if its checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth1_8l_ttm_draft_from_target_etth1_8l_stochastic.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to every run.py call (also those of the scripts run from here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

# The fine-tuned target, made by scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh: its training flags.
TARGET=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1_8l --data MultivariateDatasetBenchmark
        --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
        --output_token_len 96 --test_pred_len 96
        --e_layers 8 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10
        --use_norm --valid_last --num_workers 0)
# The pretrained TTM, made by scripts/supervised/rolling_forecast/ttm_etth1.sh: its training flags.
PRETRAINED=(--task_name forecast --is_training 1 --model ttm --model_id ETTh1 --data MultivariateDatasetBenchmark
            --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
            --output_token_len 384 --nonautoregressive --test_pred_len 96
            --ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel
            --n_vars 7 --dropout 0.1 --batch_size 32 --learning_rate 0.001 --cosine --tmax 10 --train_epochs 10
            --use_norm --valid_last --num_workers 0)
target_ckpt=$(checkpoint_of "${TARGET[@]}")
pretrained_ckpt=$(checkpoint_of "${PRETRAINED[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh
make_if_missing "$pretrained_ckpt" scripts/supervised/rolling_forecast/ttm_etth1.sh

train "${1:-1}" --task_name forecast --is_training 1 --model ttm \
      --model_id ETTh1_8l_ttm_draft_distill_stochastic_from_target_ETTh1_8l --data MultivariateDatasetBenchmark \
      --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96 \
      --output_token_len 384 --nonautoregressive --test_pred_len 96 \
      --ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel \
      --n_vars 7 --dropout 0.1 --e_layers 8 --d_model 1024 --d_ff 2048 --n_heads 8 \
      --distill --distill_target_model timer_xl --adaptation --distill_target_ckpt "$target_ckpt" --pretrain_model_path "$pretrained_ckpt" \
      --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --learning_rate 5e-4 --train_epochs 10 \
      --batch_size 32 --cosine --tmax 10 --valid_last --use_norm --num_workers 0

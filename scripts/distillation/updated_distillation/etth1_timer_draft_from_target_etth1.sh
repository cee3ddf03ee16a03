#!/usr/bin/env bash
# Distil a 0.25x Timer draft (models/timer_draft.py: the Timer baseline at 256/2/512/1, a point forecaster)
# from the fine-tuned ETTh1 Timer-XL target (timer_xl_etth1.sh), from random initialisation: it learns the
# target's next-patch predictions over each window (exp/exp_distill.py). The target is made first by its
# script when its checkpoint is missing. Skips distillation if its checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth1_timer_draft_from_target_etth1.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to every run.py call (also those of the scripts run from here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

# The fine-tuned target, made by scripts/supervised/rolling_forecast/timer_xl_etth1.sh: its training flags.
TARGET=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 --data MultivariateDatasetBenchmark
        --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
        --output_token_len 96 --test_pred_len 96
        --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10
        --use_norm --valid_last --num_workers 0)
target_ckpt=$(checkpoint_of "${TARGET[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1.sh

train "${1:-1}" --task_name forecast --is_training 1 --model timer_draft \
      --model_id ETTh1_timer_draft_distill_from_target_ETTh1 --data MultivariateDatasetBenchmark \
      --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96 \
      --output_token_len 96 --test_pred_len 96 --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 \
      --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25 \
      --distill --distill_target_model timer_xl --distill_target_ckpt "$target_ckpt" \
      --learning_rate 5e-4 --train_epochs 10 --batch_size 64 --cosine --tmax 10 --valid_last --use_norm --num_workers 0

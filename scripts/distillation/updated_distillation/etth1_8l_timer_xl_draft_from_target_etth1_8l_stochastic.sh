#!/usr/bin/env bash
# Distil a stochastic 0.25x Timer-XL draft from the fine-tuned ETTh1_8l target (timer_xl_etth1_8l.sh), starting
# from the Weather 0.25x draft of the 8-layer family (256/2/512/2). The target and the pretrained draft are made first by their scripts
# when their checkpoints are missing. Skips distillation if its checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth1_8l_timer_xl_draft_from_target_etth1_8l_stochastic.sh [GPUS]
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
# The pretrained draft, made by scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_8l_025x.sh: its training flags.
PRETRAINED=(--task_name pretrain --is_training 1 --model timer_xl_draft --model_id draft_pretrain_weather_8l_025x
            --data MultivariateDatasetBenchmark --root_path ./dataset/weather/ --data_path weather.csv
            --seq_len 1536 --test_seq_len 1536 --input_token_len 96 --output_token_len 96 --test_pred_len 96
            --batch_size 64 --learning_rate 0.0001 --cosine --tmax 10 --train_epochs 15 --use_norm --valid_last --num_workers 0
            --e_layers 8 --d_model 1024 --d_ff 2048 --n_heads 8
            --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25)
target_ckpt=$(checkpoint_of "${TARGET[@]}")
pretrained_ckpt=$(checkpoint_of "${PRETRAINED[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh
make_if_missing "$pretrained_ckpt" scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_8l_025x.sh "${1:-1}"

train "${1:-1}" --task_name forecast --is_training 1 --model timer_xl_draft \
      --model_id ETTh1_8l_draft_distill_stochastic_from_target_ETTh1_8l --data MultivariateDatasetBenchmark \
      --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96 \
      --output_token_len 96 --test_pred_len 96 --e_layers 8 --d_model 1024 --d_ff 2048 --n_heads 8 \
      --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25 \
      --distill --distill_target_model timer_xl --adaptation --distill_target_ckpt "$target_ckpt" --pretrain_model_path "$pretrained_ckpt" \
      --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --learning_rate 5e-5 --train_epochs 15 \
      --batch_size 64 --cosine --tmax 10 --valid_last --use_norm --num_workers 0

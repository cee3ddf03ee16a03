#!/usr/bin/env bash
# Pretrain the 0.25x Timer-XL draft of the ETT/Weather target 1024/8/2048/1 (256/2/512/1) on ECL (electricity):
# seq_len 1536 (16 tokens of 96), batch 64 per process, lr 1e-4, cosine, 15 epochs.
# The draft's sizes are the target's (--d_model ... --e_layers) scaled by --draft_scale_*.
# Skips training if the checkpoint exists (TRAIN=1 retrains).
# Usage: bash scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_ecl_025x.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to the run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data electricity

train "${1:-1}" --task_name pretrain --is_training 1 --model timer_xl_draft --model_id draft_pretrain_ECL_025x \
  --data MultivariateDatasetBenchmark --root_path ./dataset/electricity/ --data_path electricity.csv \
  --seq_len 1536 --test_seq_len 1536 --input_token_len 96 --output_token_len 96 --test_pred_len 96 \
  --batch_size 64 --learning_rate 0.0001 --cosine --tmax 10 --train_epochs 15 --use_norm --valid_last --num_workers 0 \
  --d_model 1024 --n_heads 8 --d_ff 2048 --e_layers 1 \
  --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25

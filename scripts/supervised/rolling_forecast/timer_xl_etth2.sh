#!/usr/bin/env bash
# Timer-XL on ETTh2: train once at horizon 96 if the checkpoint is missing (TRAIN=1 retrains),
# then test that checkpoint at horizons 96/192/336/720 (one-for-all, as the Timer-XL paper).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh2
DATA_ARGS=(--model_id ETTh2 --root_path ./dataset/ETT-small/ --data_path ETTh2.csv)
MODEL_ARGS=(--e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10)
target_benchmark

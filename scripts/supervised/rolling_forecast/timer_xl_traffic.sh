#!/usr/bin/env bash
# Timer-XL on Traffic: train once at horizon 96 if the checkpoint is missing (TRAIN=1 retrains),
# then test that checkpoint at horizons 96/192/336/720 (one-for-all, as the Timer-XL paper).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data traffic
DATA_ARGS=(--model_id Traffic --root_path ./dataset/traffic/ --data_path traffic.csv)
MODEL_ARGS=(--e_layers 5 --d_model 512 --d_ff 2048 --n_heads 8 --batch_size 4 --learning_rate 0.0005 --cosine --tmax 10 --train_epochs 10)
target_benchmark

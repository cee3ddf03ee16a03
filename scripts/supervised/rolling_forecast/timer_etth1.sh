#!/usr/bin/env bash
# Timer (models/timer.py: channel-independent decoder, absolute positions) on ETTh1, the Timer-XL ETTh1
# sizes: train once at horizon 96 unless the checkpoint exists (TRAIN=1 retrains), then test that
# checkpoint at 96/192/336/720. EXTRA_ARGS="..." is appended to every run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh  # PY, EXTRA_ARGS, ensure_data
ensure_data ETTh1

setting=$("$PY" -m utils.setting --task_name forecast --is_training 1 --model timer --model_id ETTh1 \
  --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv \
  --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96 \
  --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 \
  "${EXTRA_ARGS[@]}")
if [ "${TRAIN:-0}" = 1 ] || [ ! -f "checkpoints/$setting/checkpoint.pth" ]; then
  "$PY" -u run.py --task_name forecast --is_training 1 --model timer --model_id ETTh1 \
    --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv \
    --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96 --test_pred_len 96 \
    --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --dropout 0.1 --use_norm --valid_last \
    --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10 --num_workers 0 \
    "${EXTRA_ARGS[@]}"
fi
for horizon in 96 192 336 720; do
  "$PY" -u run.py --task_name forecast --is_training 0 --model timer --model_id ETTh1 \
    --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv \
    --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96 --test_pred_len "$horizon" \
    --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --use_norm --batch_size 32 --num_workers 0 \
    --test_dir "$setting" "${EXTRA_ARGS[@]}"
done
echo "checkpoint: checkpoints/$setting/checkpoint.pth; results: result_long_term_forecast.txt"

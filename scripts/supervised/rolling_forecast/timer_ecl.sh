#!/usr/bin/env bash
# Timer (models/timer.py: channel-independent decoder, absolute positions) on ECL at the Timer-XL ECL
# sizes: train once at horizon 96 unless the checkpoint exists (TRAIN=1 retrains), then test that
# checkpoint at horizons 96/192/336/720. EXTRA_ARGS="..." is appended to every run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data electricity

FLAGS=(--task_name forecast --is_training 1 --model timer --model_id ECL --data MultivariateDatasetBenchmark
       --root_path ./dataset/electricity/ --data_path electricity.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
       --output_token_len 96 --test_pred_len 96
       --e_layers 5 --d_model 512 --d_ff 2048 --n_heads 8 --batch_size 4 --learning_rate 0.0005 --cosine --tmax 10 --train_epochs 10
       --use_norm --valid_last --num_workers 0)
train 1 "${FLAGS[@]}"
setting=$(setting_of "${FLAGS[@]}")
for horizon in 96 192 336 720; do
  run_py "${FLAGS[@]}" --is_training 0 --test_dir "$setting" --test_pred_len "$horizon"
done
echo "checkpoint: checkpoints/$setting/checkpoint.pth; results: result_long_term_forecast.txt"

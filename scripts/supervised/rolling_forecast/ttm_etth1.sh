#!/usr/bin/env bash
# TTM (models/ttm.py, a TinyTimeMixer-style one-call forecaster) on ETTh1, trained as a forecaster of the
# --ttm_patches 4 patches of 96 after each 672-point window (--output_token_len 384 --nonautoregressive: the
# loss sees those 384 points) once unless the checkpoint exists (TRAIN=1 retrains); then the checkpoint is
# tested at horizons 96/192/336/720 (sliding rollout, 4 patches per call). This is the pretrained TTM that
# etth1_ttm_draft_from_target_etth1_stochastic.sh distils into the Timer-XL target.
# EXTRA_ARGS="..." is appended to every run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

FLAGS=(--task_name forecast --is_training 1 --model ttm --model_id ETTh1 --data MultivariateDatasetBenchmark
       --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
       --output_token_len 384 --nonautoregressive --test_pred_len 96
       --ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel
       --n_vars 7 --dropout 0.1 --batch_size 32 --learning_rate 0.001 --cosine --tmax 10 --train_epochs 10
       --use_norm --valid_last --num_workers 0)
train 1 "${FLAGS[@]}"
setting=$(setting_of "${FLAGS[@]}")
for horizon in 96 192 336 720; do
  run_py "${FLAGS[@]}" --is_training 0 --test_dir "$setting" --test_pred_len "$horizon"
done
echo "checkpoint: checkpoints/$setting/checkpoint.pth; results: result_long_term_forecast.txt"

#!/usr/bin/env bash
# Tolerance acceptance on ETTh1, horizon 720, batch 32, K 3: rollout x sigma x bias (50 runs, plus 1 target-only).
# Every grid point is one run.py call in its own folder OUT/<point>/ (its result files, run.log and, once it
# finished, a `done` marker); a rerun skips finished points and redoes unfinished ones (scripts/sweep.py).
# EXTRA_ARGS="..." is appended to every run.py call; SWEEP_ARGS="--flag value ..." fixes grid axes
# to one value each (flags that are no axis of a sweep are ignored there), e.g.
#   SWEEP_ARGS="--rollout sliding --batch_size 32" EXTRA_ARGS="--test_max_batches 2" bash scripts/supervised/rolling_forecast/spec_decoding_tests/tol_bias_sweep_etth1.sh
# Analysis (CSV, plots, table, fastest setting within +1%/+5% of the target's MSE):
#   python scripts/analysis/parse_sweep_results.py sweep_results_tol_bias_etth1 --mse_budget 1% 5%
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
ensure_data ETTh1

# The fine-tuned target, made by scripts/supervised/rolling_forecast/timer_xl_etth1.sh: its training flags.
TARGET=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 --data MultivariateDatasetBenchmark
        --root_path "$PWD/dataset/ETT-small/" --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
        --output_token_len 96 --test_pred_len 96
        --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10
        --use_norm --valid_last --num_workers 0)
# The distilled draft, made by scripts/distillation/updated_distillation/etth1_timer_xl_draft_from_target_etth1_stochastic.sh:
# its training flags (less the two checkpoint paths, which do not name the result).
DRAFT=(--task_name forecast --is_training 1 --model timer_xl_draft
       --model_id ETTh1_draft_distill_stochastic_from_target_ETTh1 --data MultivariateDatasetBenchmark
       --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
       --output_token_len 96 --test_pred_len 96 --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8
       --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25
       --distill --distill_target_model timer_xl --adaptation
       --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --learning_rate 5e-5 --train_epochs 15
       --batch_size 64 --cosine --tmax 10 --valid_last --use_norm --num_workers 0)
target_ckpt=$(checkpoint_of "${TARGET[@]}")
draft_ckpt=$(checkpoint_of "${DRAFT[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1.sh
make_if_missing "$draft_ckpt" scripts/distillation/updated_distillation/etth1_timer_xl_draft_from_target_etth1_stochastic.sh
target_setting=$(setting_of "${TARGET[@]}")

# run.py starts inside each point's folder: paths are absolute.
TEST=("${TARGET[@]}" --is_training 0 --checkpoints "$PWD/checkpoints/" --test_dir "$target_setting"
      --test_max_batches 20 --trace_inference_breakdown)
OUT=sweep_results_tol_bias_etth1
# the target alone: the reference MSE of each horizon and batch size
sweep "$OUT" --test_pred_len 720 --batch_size 32 -- "${TEST[@]}"
# speculative decoding, timed against the target alone on the same batches
sweep "$OUT" --rollout sliding cached --test_pred_len 720 --batch_size 32 --spec_accept_mode tolerance --spec_k 3 \
  --spec_sigma 0.1 0.3 0.5 0.7 1.0 --spec_accept_bias 1 1.5 2 3 5 \
  -- "${TEST[@]}" --use_speculative --spec_draft_ckpt "$PWD/$draft_ckpt" --draft_stochastic --spec_compare_baseline

#!/usr/bin/env bash
# Timer-XL alone vs speculative decoding with the distilled stochastic TTM draft, on ETTh1: horizon 720,
# batch 32, K 3, tolerance rule with sigma 0.3 and bias 1. TTM is a one-call draft: ONE call per round
# proposes up to --spec_k patches (--spec_k <= --ttm_patches 4), so c is the cost of that call per round.
# The draft is built from the target's flags plus its own TTM flags. The target and the draft are made first
# by their scripts when their checkpoints are missing.
# EXTRA_ARGS="..." is appended to every run.py call and overrides the flags here, e.g.
#   EXTRA_ARGS="--spec_k 4 --rollout cached --test_max_batches 20" bash scripts/supervised/rolling_forecast/spec_decoding_tests/test_etth1_timer_xl_vs_ttm_spec.sh
# Appends to result_inference_summary.txt, result_inference_breakdown.txt and result_long_term_forecast.txt in
# the repository root; the speculative run prints its record (accuracy, acceptance, speedup).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
ensure_data ETTh1

# The fine-tuned target, made by scripts/supervised/rolling_forecast/timer_xl_etth1.sh: its training flags.
TARGET=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 --data MultivariateDatasetBenchmark
        --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
        --output_token_len 96 --test_pred_len 96
        --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10
        --use_norm --valid_last --num_workers 0)
# The TTM draft's own sizes, and its checkpoint's training flags (less the two checkpoint paths, which do not
# name the result), made by scripts/distillation/updated_distillation/etth1_ttm_draft_from_target_etth1_stochastic.sh.
TTM_SIZES=(--ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel
           --n_vars 7)
DRAFT=(--task_name forecast --is_training 1 --model ttm --model_id ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1
       --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672
       --test_seq_len 672 --input_token_len 96 --output_token_len 384 --nonautoregressive --test_pred_len 96
       "${TTM_SIZES[@]}" --dropout 0.1 --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8
       --distill --distill_target_model timer_xl --adaptation
       --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --learning_rate 5e-4 --train_epochs 10
       --batch_size 32 --cosine --tmax 10 --valid_last --use_norm --num_workers 0)
target_ckpt=$(checkpoint_of "${TARGET[@]}")
draft_ckpt=$(checkpoint_of "${DRAFT[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1.sh
make_if_missing "$draft_ckpt" scripts/distillation/updated_distillation/etth1_ttm_draft_from_target_etth1_stochastic.sh
target_setting=$(setting_of "${TARGET[@]}")

echo "== ETTh1: Timer-XL alone"
run_py "${TARGET[@]}" --is_training 0 --test_dir "$target_setting" --test_pred_len 720 --batch_size 32 \
  --trace_inference_breakdown
echo "== ETTh1: speculative decoding with the stochastic TTM draft"
run_py "${TARGET[@]}" --is_training 0 --test_dir "$target_setting" --test_pred_len 720 --batch_size 32 \
  --use_speculative --spec_draft_model ttm --spec_draft_ckpt "$draft_ckpt" --draft_stochastic "${TTM_SIZES[@]}" \
  --spec_k 3 --spec_sigma 0.3 --spec_accept_bias 1.0 --spec_accept_mode tolerance --rollout sliding \
  --spec_compare_baseline --trace_inference_breakdown

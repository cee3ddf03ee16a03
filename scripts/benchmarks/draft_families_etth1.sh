#!/usr/bin/env bash
# The three draft families against the 1-layer ETTh1 Timer-XL target, each in its own speedup.py run:
# the 0.25x Timer-XL draft (stochastic), the 0.25x Timer draft (point forecaster) and TTM (a one-call
# stochastic draft, 4 patches per call). Horizon 720, batch 1 and 32, K 1-4 and adaptive, tolerance
# sigma 0.3, both rollouts. The target and the drafts are made first by their scripts when their
# checkpoints are missing. Writes benchmark_results/etth1_<family>/speedup.{csv,png}; each run prints the
# two models' parameter counts and its markdown table.
# EXTRA_ARGS="..." is appended to every run.py call (the training scripts run from here); BENCH_ARGS="..."
# to every speedup.py call and overrides its flags here, e.g. BENCH_ARGS="--quick" or BENCH_ARGS="--device cuda".
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ensure_data ETTh1
read -r -a BENCH_ARGS <<< "${BENCH_ARGS:-}"

# The fine-tuned target, made by scripts/supervised/rolling_forecast/timer_xl_etth1.sh: its training flags.
TARGET=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 --data MultivariateDatasetBenchmark
        --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
        --output_token_len 96 --test_pred_len 96
        --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8 --batch_size 32 --learning_rate 0.0001 --lradj type1 --train_epochs 10
        --use_norm --valid_last --num_workers 0)
# The distilled drafts' training flags (less the checkpoint paths, which do not name the result), made by
# scripts/distillation/updated_distillation/etth1_{timer_xl_draft,timer_draft,ttm_draft}_from_target_etth1*.sh.
TIMER_XL_DRAFT=(--task_name forecast --is_training 1 --model timer_xl_draft
                --model_id ETTh1_draft_distill_stochastic_from_target_ETTh1 --data MultivariateDatasetBenchmark
                --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672 --test_seq_len 672 --input_token_len 96
                --output_token_len 96 --test_pred_len 96 --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8
                --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25
                --distill --distill_target_model timer_xl --adaptation
                --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --learning_rate 5e-5 --train_epochs 15
                --batch_size 64 --cosine --tmax 10 --valid_last --use_norm --num_workers 0)
TIMER_DRAFT=(--task_name forecast --is_training 1 --model timer_draft --model_id ETTh1_timer_draft_distill_from_target_ETTh1
             --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672
             --test_seq_len 672 --input_token_len 96 --output_token_len 96 --test_pred_len 96
             --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8
             --draft_scale_d_model 0.25 --draft_scale_n_heads 0.25 --draft_scale_d_ff 0.25 --draft_scale_e_layers 0.25
             --distill --distill_target_model timer_xl
             --learning_rate 5e-4 --train_epochs 10 --batch_size 64 --cosine --tmax 10 --valid_last --use_norm --num_workers 0)
TTM_SIZES=(--ttm_patches 4 --hidden_dim 64 --layers 2 --AP_levels 2 --factor 2 --mode common_channel --d_mode mix_channel
           --n_vars 7)
TTM_DRAFT=(--task_name forecast --is_training 1 --model ttm --model_id ETTh1_ttm_draft_distill_stochastic_from_target_ETTh1
           --data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672
           --test_seq_len 672 --input_token_len 96 --output_token_len 384 --nonautoregressive --test_pred_len 96
           "${TTM_SIZES[@]}" --dropout 0.1 --e_layers 1 --d_model 1024 --d_ff 2048 --n_heads 8
           --distill --distill_target_model timer_xl --adaptation
           --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --learning_rate 5e-4 --train_epochs 10
           --batch_size 32 --cosine --tmax 10 --valid_last --use_norm --num_workers 0)
DISTILL=scripts/distillation/updated_distillation
target_ckpt=$(checkpoint_of "${TARGET[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1.sh
make_if_missing "$(checkpoint_of "${TIMER_XL_DRAFT[@]}")" $DISTILL/etth1_timer_xl_draft_from_target_etth1_stochastic.sh
make_if_missing "$(checkpoint_of "${TIMER_DRAFT[@]}")" $DISTILL/etth1_timer_draft_from_target_etth1.sh
make_if_missing "$(checkpoint_of "${TTM_DRAFT[@]}")" $DISTILL/etth1_ttm_draft_from_target_etth1_stochastic.sh

# speedup.py takes the target's run.py flags (model and data), its own flags, then the draft's.
BENCH=(--target_ckpt "$target_ckpt" --root_path ./dataset/ETT-small/ --data_path ETTh1.csv --seq_len 672
       --test_seq_len 672 --input_token_len 96 --output_token_len 96 --use_norm --d_model 1024 --n_heads 8 --d_ff 2048
       --e_layers 1 --num_workers 0 --batch_sizes 1 32 --horizons 720 --ks 1 2 3 4 --sigmas 0.3 --n_batches 8)
echo "== the 0.25x Timer-XL draft"
"$PY" scripts/benchmarks/speedup.py "${BENCH[@]}" --draft_ckpt "$(checkpoint_of "${TIMER_XL_DRAFT[@]}")" \
  --spec_draft_model timer_xl_draft --draft_stochastic --out_dir benchmark_results/etth1_timer_xl_draft "${BENCH_ARGS[@]}"
echo "== the 0.25x Timer draft"
"$PY" scripts/benchmarks/speedup.py "${BENCH[@]}" --draft_ckpt "$(checkpoint_of "${TIMER_DRAFT[@]}")" \
  --spec_draft_model timer_draft --out_dir benchmark_results/etth1_timer_draft "${BENCH_ARGS[@]}"
echo "== the TTM draft (one call per round)"
"$PY" scripts/benchmarks/speedup.py "${BENCH[@]}" --draft_ckpt "$(checkpoint_of "${TTM_DRAFT[@]}")" \
  --spec_draft_model ttm --draft_stochastic "${TTM_SIZES[@]}" --out_dir benchmark_results/etth1_ttm "${BENCH_ARGS[@]}"

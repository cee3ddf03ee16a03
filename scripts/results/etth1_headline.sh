#!/usr/bin/env bash
# Every checkpoint and number behind the README's headline, on ETTh1 at horizon 720: the 1- and 8-layer Timer-XL
# targets, their stochastic 0.25x drafts distilled on the targets' own cached rollouts, the accuracy of the
# rollouts, and the speed benchmark (target sliding, target cached, speculative cached within MSE budgets of 1%
# and 5%, batch 1 and 32). Resumable: a checkpoint that exists is not retrained (TRAIN=1 retrains), a training
# that was stopped resumes from its last finished epoch. Each step prints the CPU time it took.
# These are the reduced runs of this CPU (subsets of the windows, few epochs); the full recipes are the scripts
# under scripts/supervised and scripts/distillation.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ensure_venv
ensure_data ETTh1

DATA=(--data MultivariateDatasetBenchmark --root_path ./dataset/ETT-small/ --data_path ETTh1.csv
      --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96 --use_norm --num_workers 0)
WIDTH=(--d_model 1024 --d_ff 2048 --n_heads 8)

timed_step() {  # timed_step NAME COMMAND...: run it and print its CPU time
  local name=$1 start
  shift
  start=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  "$@"
  echo "== $name: $(awk -v s="$start" -v hz="$(getconf CLK_TCK)" '{printf "%.0f", ($14 + $15 + $16 + $17 - s) / hz}' /proc/$$/stat) s of CPU time"
}

TARGET_1L=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1 "${DATA[@]}" "${WIDTH[@]}"
           --e_layers 1 --test_pred_len 96 --batch_size 32 --learning_rate 0.0001 --lradj type1 --valid_last
           --subset_rand_ratio 0.5 --train_epochs 3)
TARGET_8L=(--task_name forecast --is_training 1 --model timer_xl --model_id ETTh1_8l "${DATA[@]}" "${WIDTH[@]}"
           --e_layers 8 --test_pred_len 96 --batch_size 32 --learning_rate 0.0001 --lradj type1 --valid_last
           --subset_rand_ratio 0.15 --train_epochs 1)
timed_step "1-layer target" train 1 "${TARGET_1L[@]}"
timed_step "8-layer target" train 1 "${TARGET_8L[@]}"
target_1l=$(checkpoint_of "${TARGET_1L[@]}")
target_8l=$(checkpoint_of "${TARGET_8L[@]}")

# The drafts: 0.25x of the target's sizes, stochastic, distilled on the target's own 7-patch cached rollouts and
# kept at the epoch closest to the target (--distill_vali teacher).
DISTILL=(--task_name forecast --is_training 1 --model timer_xl_draft "${DATA[@]}" "${WIDTH[@]}" --test_pred_len 96
         --draft_stochastic --draft_nll_var_reg 0.01 --draft_teacher_noise 0.05 --distill --distill_target_model timer_xl
         --distill_rollout_patches 7 --distill_vali teacher --patience 10 --batch_size 32 --learning_rate 0.0005
         --cosine --valid_last)
DRAFT_1L=("${DISTILL[@]}" --model_id ETTh1_rollout_draft --e_layers 1 --distill_target_ckpt "$target_1l"
          --subset_rand_ratio 0.5 --train_epochs 6 --tmax 6)
DRAFT_8L=("${DISTILL[@]}" --model_id ETTh1_8l_rollout_draft --e_layers 8 --distill_target_ckpt "$target_8l"
          --subset_rand_ratio 0.25 --train_epochs 1 --tmax 1)
timed_step "1-layer target's draft" train 1 "${DRAFT_1L[@]}"
timed_step "8-layer target's draft" train 1 "${DRAFT_8L[@]}"

for layers in 1 8; do
  if [ "$layers" = 1 ]; then target=$target_1l; draft=$(checkpoint_of "${DRAFT_1L[@]}"); else
    target=$target_8l; draft=$(checkpoint_of "${DRAFT_8L[@]}"); fi
  timed_step "accuracy of the rollouts, $layers layer(s)" "$PY" scripts/analysis/cached_accuracy.py \
    "${DATA[@]}" "${WIDTH[@]}" --e_layers "$layers" --target_ckpt "$target" --horizon 720 --n_windows 256 \
    --out_dir "benchmark_results/etth1_${layers}l_accuracy"
  timed_step "draft against target, $layers layer(s)" "$PY" scripts/analysis/draft_vs_target.py \
    "${DATA[@]}" "${WIDTH[@]}" --e_layers "$layers" --target_ckpt "$target" --draft_ckpt "$draft" --draft_stochastic \
    --horizons 96 720 --max_batches 8
  timed_step "speed benchmark, $layers layer(s)" "$PY" scripts/benchmarks/speedup.py \
    "${DATA[@]}" "${WIDTH[@]}" --e_layers "$layers" --target_ckpt "$target" --draft_ckpt "$draft" --draft_stochastic \
    --ks 1 2 3 4 --mse_budgets 1 5 --spec_calib_windows 64 --batch_sizes 1 32 --horizons 720 --n_batches 3 \
    --out_dir "benchmark_results/etth1_${layers}l_headline"
done

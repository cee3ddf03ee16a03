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

read_flags DATA scripts/flags/etth1_data.flags
WIDTH=(
  --d_model 1024
  --d_ff 2048
  --n_heads 8
)

timed_step() {  # timed_step NAME COMMAND...: run it and print its CPU time
  local name=$1 start
  shift
  start=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  "$@"
  echo "== $name: $(awk -v s="$start" -v hz="$(getconf CLK_TCK)" '{printf "%.0f", ($14 + $15 + $16 + $17 - s) / hz}' /proc/$$/stat) s of CPU time"
}

# The targets of timer_xl_etth1.sh and timer_xl_etth1_8l.sh (the same checkpoints), on subsets of the windows
# for few epochs.
read_flags TARGET_1L scripts/flags/etth1_data.flags scripts/flags/etth1_target.flags
read_flags TARGET_8L scripts/flags/etth1_data.flags scripts/flags/etth1_8l_target.flags
REDUCED_1L=(
  --subset_rand_ratio 0.5
  --train_epochs 3
)
REDUCED_8L=(
  --subset_rand_ratio 0.15
  --train_epochs 1
)
timed_step "1-layer target" train 1 "${TARGET_1L[@]}" "${REDUCED_1L[@]}"
timed_step "8-layer target" train 1 "${TARGET_8L[@]}" "${REDUCED_8L[@]}"
target_1l=$(checkpoint_of "${TARGET_1L[@]}")
target_8l=$(checkpoint_of "${TARGET_8L[@]}")

# The drafts: 0.25x of the target's sizes, stochastic, distilled on the target's own 7-patch cached rollouts and
# kept at the epoch closest to the target (--distill_vali teacher).
read_flags DRAFT_1L scripts/flags/etth1_data.flags scripts/flags/etth1_rollout_draft.flags
read_flags DRAFT_8L scripts/flags/etth1_data.flags scripts/flags/etth1_8l_rollout_draft.flags
timed_step "1-layer target's draft" train 1 "${DRAFT_1L[@]}" --distill_target_ckpt "$target_1l"
timed_step "8-layer target's draft" train 1 "${DRAFT_8L[@]}" --distill_target_ckpt "$target_8l"
draft_1l=$(checkpoint_of "${DRAFT_1L[@]}")
draft_8l=$(checkpoint_of "${DRAFT_8L[@]}")

for layers in 1 8; do
  if [ "$layers" = 1 ]; then target=$target_1l; draft=$draft_1l; else target=$target_8l; draft=$draft_8l; fi
  PAIR=(
    "${DATA[@]}"
    "${WIDTH[@]}"
    --e_layers "$layers"
    --target_ckpt "$target"
  )
  timed_step "accuracy of the rollouts, $layers layer(s)" "$PY" scripts/analysis/cached_accuracy.py "${PAIR[@]}" \
    --horizon 720 \
    --n_windows 256 \
    --out_dir "benchmark_results/etth1_${layers}l_accuracy"
  timed_step "draft against target, $layers layer(s)" "$PY" scripts/analysis/draft_vs_target.py "${PAIR[@]}" \
    --draft_ckpt "$draft" \
    --draft_stochastic \
    --horizons 96 720 \
    --max_batches 8
  timed_step "speed benchmark, $layers layer(s)" "$PY" scripts/benchmarks/speedup.py "${PAIR[@]}" \
    --draft_ckpt "$draft" \
    --draft_stochastic \
    --ks 1 2 3 4 \
    --mse_budgets 1 5 \
    --spec_calib_windows 64 \
    --batch_sizes 1 32 \
    --horizons 720 \
    --n_batches 3 \
    --out_dir "benchmark_results/etth1_${layers}l_headline"
done

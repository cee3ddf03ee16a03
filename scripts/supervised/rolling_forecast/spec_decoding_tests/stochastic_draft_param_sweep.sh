#!/usr/bin/env bash
# Lossless speculative sampling with the stochastic draft (q = N(mu_q, exp(logvar_q))) on ETTh1, horizon 720,
# batch 32, K 3: rollout x sigma (width of the target p = N(mu_p, sigma^2)) x bias (40 runs, plus 1 target-only).
# At small sigma almost nothing is accepted by construction (a patch has P*C values); that is expected.
# Every grid point is one run.py call in its own folder OUT/<point>/ (its result files, run.log and, once it
# finished, a `done` marker); a rerun skips finished points and redoes unfinished ones (scripts/sweep.py).
# EXTRA_ARGS="..." is appended to every run.py call; SWEEP_ARGS="--flag value ..." fixes grid axes
# to one value each (flags that are no axis of a sweep are ignored there), e.g.
#   SWEEP_ARGS="--rollout sliding --batch_size 32" EXTRA_ARGS="--test_max_batches 2" bash scripts/supervised/rolling_forecast/spec_decoding_tests/stochastic_draft_param_sweep.sh
# Analysis (CSV, plots, table, fastest setting within +1%/+5% of the target's MSE):
#   python scripts/analysis/parse_sweep_results.py sweep_results_stochastic_draft_params_etth1 --mse_budget 1% 5%
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
ensure_data ETTh1

read_flags TARGET scripts/flags/etth1_data.flags scripts/flags/etth1_target.flags
read_flags DRAFT scripts/flags/etth1_data.flags scripts/flags/etth1_draft_025x.flags
# run.py starts inside each point's folder: the paths of the checkpoints and of the data are absolute.
CHECKPOINTS=(--checkpoints "$PWD/checkpoints/")
target_ckpt=$(checkpoint_of "${TARGET[@]}" "${CHECKPOINTS[@]}")
draft_ckpt=$(checkpoint_of "${DRAFT[@]}" "${CHECKPOINTS[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1.sh
make_if_missing "$draft_ckpt" scripts/distillation/updated_distillation/etth1_timer_xl_draft_from_target_etth1_stochastic.sh

TEST=(
  "${TARGET[@]}"
  --root_path "$PWD/dataset/ETT-small/"
  --is_training 0
  "${CHECKPOINTS[@]}"
  --test_dir "$(setting_of "${TARGET[@]}")"
  --test_max_batches 20
  --trace_inference_breakdown
)
SPECULATIVE=(
  --use_speculative
  --spec_draft_ckpt "$draft_ckpt"
  --draft_stochastic
  --spec_compare_baseline
)

OUT=sweep_results_stochastic_draft_params_etth1
# the target alone: the reference MSE of each horizon and batch size
sweep "$OUT" \
  --test_pred_len 720 \
  --batch_size 32 \
  -- "${TEST[@]}"
# speculative decoding, timed against the target alone on the same batches
sweep "$OUT" \
  --rollout sliding cached \
  --test_pred_len 720 \
  --batch_size 32 \
  --spec_accept_mode lossless \
  --spec_k 3 \
  --spec_sigma 0.1 0.3 0.5 0.7 1.0 \
  --spec_accept_bias 1 1.5 2 3 \
  -- "${TEST[@]}" "${SPECULATIVE[@]}"

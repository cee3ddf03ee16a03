#!/usr/bin/env bash
# Distil a stochastic TTM draft (models/ttm.py: one call forecasts 4 patches) from the fine-tuned ETTh1
# Timer-XL target (timer_xl_etth1.sh), starting from the TTM of ttm_etth1.sh (head.* -> head_mean.*). The
# student fits the target's own rollout of the 4 patches after each window (exp/exp_distill.py): what its
# proposals are tested against. --d_model/--n_heads/--d_ff/--e_layers are the teacher's sizes; the
# --draft_scale_* factors do not apply to TTM (its sizes are --hidden_dim, --layers, --AP_levels, ...).
# The target and the pretrained TTM are made first by their scripts when their checkpoints are missing.
# Skips distillation if its checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth1_ttm_draft_from_target_etth1_stochastic.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to every run.py call (also those of the scripts run from here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

read_flags TARGET scripts/flags/etth1_data.flags scripts/flags/etth1_target.flags
read_flags PRETRAINED scripts/flags/etth1_data.flags scripts/flags/ttm_sizes.flags scripts/flags/etth1_ttm.flags
read_flags DRAFT scripts/flags/etth1_data.flags scripts/flags/ttm_sizes.flags scripts/flags/etth1_ttm_draft.flags
target_ckpt=$(checkpoint_of "${TARGET[@]}")
pretrained_ckpt=$(checkpoint_of "${PRETRAINED[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1.sh
make_if_missing "$pretrained_ckpt" scripts/supervised/rolling_forecast/ttm_etth1.sh

train "${1:-1}" "${DRAFT[@]}" --distill_target_ckpt "$target_ckpt" --pretrain_model_path "$pretrained_ckpt"

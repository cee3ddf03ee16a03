#!/usr/bin/env bash
# Distil a 0.25x Timer draft (models/timer_draft.py: the Timer baseline at 256/2/512/2, a point forecaster)
# from the fine-tuned 8-layer ETTh1 Timer-XL target (timer_xl_etth1_8l.sh), from random initialisation: it learns the
# target's next-patch predictions over each window (exp/exp_distill.py). The target is made first by its
# script when its checkpoint is missing. Skips distillation if its checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth1_8l_timer_draft_from_target_etth1_8l.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to every run.py call (also those of the scripts run from here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

read_flags TARGET scripts/flags/etth1_data.flags scripts/flags/etth1_8l_target.flags
read_flags DRAFT scripts/flags/etth1_data.flags scripts/flags/etth1_8l_timer_draft_025x.flags
target_ckpt=$(checkpoint_of "${TARGET[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh

train "${1:-1}" "${DRAFT[@]}" --distill_target_ckpt "$target_ckpt"

#!/usr/bin/env bash
# Distil a stochastic 0.25x Timer-XL draft from the fine-tuned etth2 target (timer_xl_etth2.sh),
# starting from the Weather 0.25x draft (256/2/512/1).
# A missing target or pretrained draft is first made by running its script. Skips distillation if the
# checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth2_timer_xl_draft_from_target_etth2_stochastic.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." adds run.py flags to every command.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
distill_draft etth2 "${1:-1}"

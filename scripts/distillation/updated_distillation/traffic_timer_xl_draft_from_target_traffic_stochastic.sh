#!/usr/bin/env bash
# Distil a stochastic 0.25x Timer-XL draft from the fine-tuned traffic target (timer_xl_traffic.sh),
# starting from the Traffic 0.25x draft (TARGET_FAMILY=ecl: 128/2/512/1).
# A missing target or pretrained draft is first made by running its script. Skips distillation if the
# checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/traffic_timer_xl_draft_from_target_traffic_stochastic.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." adds run.py flags to every command.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
distill_draft traffic "${1:-1}"

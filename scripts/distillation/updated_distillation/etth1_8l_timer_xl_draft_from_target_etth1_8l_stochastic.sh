#!/usr/bin/env bash
# Distil a stochastic 0.25x Timer-XL draft from the fine-tuned ETTh1_8l target (timer_xl_etth1_8l.sh), starting
# from the Weather 0.25x draft of the 8-layer family (256/2/512/2). The target and the pretrained draft are made first by their scripts
# when their checkpoints are missing. Skips distillation if its checkpoint exists (TRAIN=1 re-distils).
# Usage: bash scripts/distillation/updated_distillation/etth1_8l_timer_xl_draft_from_target_etth1_8l_stochastic.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to every run.py call (also those of the scripts run from here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data ETTh1

read_flags TARGET scripts/flags/etth1_data.flags scripts/flags/etth1_8l_target.flags
read_flags PRETRAINED scripts/flags/draft_pretrain_weather_8l_025x.flags
read_flags DRAFT scripts/flags/etth1_data.flags scripts/flags/etth1_8l_draft_025x.flags
target_ckpt=$(checkpoint_of "${TARGET[@]}")
pretrained_ckpt=$(checkpoint_of "${PRETRAINED[@]}")
make_if_missing "$target_ckpt" scripts/supervised/rolling_forecast/timer_xl_etth1_8l.sh
make_if_missing "$pretrained_ckpt" scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_8l_025x.sh "${1:-1}"

train "${1:-1}" "${DRAFT[@]}" --distill_target_ckpt "$target_ckpt" --pretrain_model_path "$pretrained_ckpt"

#!/usr/bin/env bash
# Pretrain the 0.25x Timer-XL draft of the 8-layer ETTh1 target 1024/8/2048/8 (256/2/512/2) on Weather:
# seq_len 1536 (16 tokens of 96), batch 64 per process.
# Skips training if the checkpoint exists (TRAIN=1 retrains).
# Usage: bash scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_8l_025x.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to the run.py call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source scripts/lib.sh
ensure_data weather

read_flags DRAFT scripts/flags/draft_pretrain_weather_8l_025x.flags
train "${1:-1}" "${DRAFT[@]}"

#!/usr/bin/env bash
# Pretrain the 0.25x Timer-XL draft of the ETT/Weather target 1024/8/2048/1 (256/2/512/1) on ECL (electricity):
# seq_len 1536 (16 tokens of 96), batch 64 per process.
# Skips training if the checkpoint exists (TRAIN=1 retrains).
# Usage: bash scripts/pretrain/timer_xl_draft_ecl_025x.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." is appended to the run.py call.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ensure_data electricity

read_flags DRAFT scripts/flags/draft_pretrain_ecl_025x.flags
train "${1:-1}" "${DRAFT[@]}"

#!/usr/bin/env bash
# Pretrain the 0.25x Timer-XL draft on ECL (electricity):
# seq_len 1536 (16 tokens of 96), batch 64 per process, lr 1e-4, cosine, 15 epochs.
# Draft sizes: the ETT/Weather target 1024/8/2048/1 scaled by 0.25; TARGET_FAMILY=ecl scales the
# ECL/Traffic target 512/8/2048/5 instead. Skips training if the checkpoint exists (TRAIN=1 retrains).
# Usage: bash scripts/pretrain/timer_xl_draft_ecl_025x.sh [GPUS]
#   GPUS > 1 runs torchrun --ddp; EXTRA_ARGS="..." adds run.py flags to every command.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
pretrain_draft ecl 0.25 "${1:-1}"

#!/usr/bin/env bash
# Timer-XL alone vs speculative decoding with the distilled 0.25x stochastic draft, on ettm2.
# Needs the fine-tuned target (scripts/supervised/rolling_forecast/timer_xl_ettm2.sh) and the distilled draft
# (scripts/distillation/updated_distillation/ettm2_timer_xl_draft_from_target_ettm2_stochastic.sh, itself from
# the Weather 0.25x pretrained draft (scripts/pretrain/increased_batch_and_seq_len/timer_xl_draft_weather_025x.sh));
# whichever is missing is made first by running its script (full size: hours on a GPU).
# Env: BASELINE=1 (0 skips the target-only run), SPEC_K=3, SPEC_SIGMA=0.7, SPEC_BIAS=1.0, SPEC_MODE=tolerance
# (or lossless), HORIZON=720, BATCH=32, MAX_BATCHES (unset: the whole test split), EXTRA_ARGS="..." (added to
# every run.py call); TARGET_FLAGS, TARGET_CKPT, DISTILLED_CKPT test other checkpoints (scripts/lib.sh, spec_setup).
# Appends to result_inference_summary.txt, result_inference_breakdown.txt, result_long_term_forecast.txt and
# spec_decoding_new_stochastic_025x.csv in the repository root, then prints acceptance and speedup.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
source scripts/lib.sh
spec_test ettm2

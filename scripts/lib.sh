# Shared helpers for the experiment scripts. Source it from the repository root.
# PY: the project's python (.venv if present). Every run.py call gets "${EXTRA_ARGS[@]}" appended,
# so `EXTRA_ARGS="--train_epochs 1" bash scripts/...` or a GPU index reaches every command.

PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
read -r -a EXTRA_ARGS <<< "${EXTRA_ARGS:-}"

# ensure_venv: create .venv and install requirements.txt, again whenever requirements.txt changed
# (or an earlier install did not finish).
ensure_venv() {
  local stamp=.venv/requirements.sha256 wanted
  wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -r requirements.txt
    echo "$wanted" > "$stamp"
  fi
  PY=.venv/bin/python
}

# ensure_data NAME: copy/verify a benchmark file into dataset/ (see dataset/README.md).
ensure_data() {
  if [ "${TARGET_PRINT_FLAGS:-0}" = 1 ]; then return 0; fi  # target_args: only report flags
  "$PY" -m data_provider.fetch "$1"
}

# setting_of FLAGS...: the checkpoint folder name run.py will use for these flags.
setting_of() {
  "$PY" -m utils.setting "$@" "${EXTRA_ARGS[@]}"
}

run_py() {
  "$PY" -u run.py "$@" "${EXTRA_ARGS[@]}"
}

# launch GPUS FLAGS...: one process, or torchrun with --ddp when GPUS > 1.
launch() {
  local gpus=$1; shift
  if [ "${gpus:-1}" -gt 1 ]; then
    "$PY" -m torch.distributed.run --nproc_per_node "$gpus" run.py --ddp "$@" "${EXTRA_ARGS[@]}"
  else
    run_py "$@"
  fi
}

# target_benchmark: train Timer-XL once (horizon 96) unless its checkpoint exists (TRAIN=1 forces),
# then test the checkpoint at horizons 96, 192, 336 and 720. Needs DATA_ARGS and MODEL_ARGS arrays.
target_benchmark() {
  local common=(--task_name forecast --model timer_xl --data MultivariateDatasetBenchmark
                --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96
                --valid_last --use_norm --num_workers 0 "${DATA_ARGS[@]}" "${MODEL_ARGS[@]}")
  if [ "${TARGET_PRINT_FLAGS:-0}" = 1 ]; then  # target_args: print the training flags, run nothing
    printf '%s\n' "${common[@]}" --is_training 1
    return 0
  fi
  local setting
  setting=$(setting_of "${common[@]}" --is_training 1)
  if [ "${TRAIN:-0}" = 1 ] || [ ! -f "checkpoints/$setting/checkpoint.pth" ]; then
    run_py "${common[@]}" --is_training 1 --test_pred_len 96
  fi
  for horizon in 96 192 336 720; do
    run_py "${common[@]}" --is_training 0 --test_dir "$setting" --test_pred_len "$horizon"
  done
  echo "checkpoint: checkpoints/$setting/checkpoint.pth; results: result_long_term_forecast.txt"
}

# ================================================================ draft pretraining and distillation
# DATA names are the target-script suffixes, any case: etth1 etth2 ettm1 ettm2 weather traffic ecl.
# Functions named *_args print run.py flags one per line; *_setting / *_ckpt print one line.
# The scripts train unless their checkpoint exists (TRAIN=1 retrains); ensure_* run a script only
# when its checkpoint is missing. Scripts started from here get EXTRA_ARGS passed on.

DRAFT_SCALE=0.25  # the drafts that distillation starts from and that speculative decoding uses

# into ARRAY CMD...: run CMD and store its output lines in ARRAY; fails when CMD fails.
into() {
  local __out
  __out=$("${@:2}") || return 1
  mapfile -t "$1" <<< "$__out"
}

# flag_value FLAG ARGS...: the value given to FLAG in ARGS (the last one wins, as in argparse).
flag_value() {
  local name=$1 value="" found=0
  shift
  while [ $# -gt 0 ]; do
    if [ "$1" = "$name" ] && [ $# -gt 1 ]; then value=$2; found=1; fi
    shift
  done
  if [ "$found" != 1 ]; then echo "error: no $name among the flags" >&2; return 1; fi
  printf '%s\n' "$value"
}

# run_script SCRIPT ARGS...: run another experiment script with this one's EXTRA_ARGS.
run_script() {
  EXTRA_ARGS="${EXTRA_ARGS[*]}" bash "$@"
}

# require_file PATH WHAT: fail with a message unless PATH exists.
require_file() {
  if [ ! -f "$1" ]; then echo "error: $2 not found: $1" >&2; return 1; fi
}

# train_unless_done GPUS FLAGS...: train unless the checkpoint of FLAGS exists (TRAIN=1 retrains).
train_unless_done() {
  local gpus=$1 setting
  shift
  setting=$(setting_of "$@") || return 1
  if [ "${TRAIN:-0}" = 1 ] || [ ! -f "checkpoints/$setting/checkpoint.pth" ]; then
    launch "$gpus" "$@"
  else
    echo "checkpoints/$setting/checkpoint.pth exists; not retraining (TRAIN=1 retrains)"
  fi
  echo "checkpoint: checkpoints/$setting/checkpoint.pth"
}

# scale_tag SCALE: 0.25 -> 025x, 0.01 -> 001x (the suffix of model ids and script names).
scale_tag() {
  echo "${1//./}x"
}

# ---------------------------------------------------------------- targets (timer_xl_<data>.sh)
target_script() {
  local script="scripts/supervised/rolling_forecast/timer_xl_${1,,}.sh"
  require_file "$script" "target script for '$1'" && echo "$script"
}

# target_args DATA: the flags with which timer_xl_<data>.sh trains its target (read from the script itself).
target_args() {
  local script
  script=$(target_script "$1") || return 1
  TARGET_PRINT_FLAGS=1 bash "$script"
}

target_setting() {
  local -a flags
  into flags target_args "$1" || return 1
  setting_of "${flags[@]}"
}

target_ckpt() {
  local setting
  setting=$(target_setting "$1") || return 1
  echo "checkpoints/$setting/checkpoint.pth"
}

# ensure_target DATA: train (and test) the target with its script unless its checkpoint exists;
# sets TARGET_CKPT to the checkpoint path.
ensure_target() {
  TARGET_CKPT=$(target_ckpt "$1") || return 1
  if [ ! -f "$TARGET_CKPT" ]; then
    echo "target checkpoint $TARGET_CKPT missing: running $(target_script "$1")"
    run_script "$(target_script "$1")"
  fi
  require_file "$TARGET_CKPT" "target checkpoint"
}

# target_dims FAMILY: --d_model/--n_heads/--d_ff/--e_layers of the target a draft is scaled from:
# ett (ETT*/Weather target, 1024/8/2048/1, read from timer_xl_weather.sh) or ecl (ECL/Traffic target,
# 512/8/2048/5, read from timer_xl_ecl.sh).
target_dims() {
  local data
  case "${1,,}" in
    ett) data=weather ;;
    ecl) data=ecl ;;
    *) echo "error: TARGET_FAMILY '$1' is not one of: ett, ecl" >&2; return 1 ;;
  esac
  local -a flags
  into flags target_args "$data" || return 1
  local name value
  for name in --d_model --n_heads --d_ff --e_layers; do
    value=$(flag_value "$name" "${flags[@]}") || return 1
    printf '%s\n' "$name" "$value"
  done
}

# draft_scale_args SCALE: the four --draft_scale_* factors.
draft_scale_args() {
  local name
  for name in d_model n_heads d_ff e_layers; do
    printf '%s\n' "--draft_scale_$name" "$1"
  done
}

# ---------------------------------------------------------------- draft pretraining
# pretrain_draft_args DATA SCALE [FAMILY]: DATA is weather, traffic, ecl (the target script's file)
# or all_datasets (--data Utsd: every .csv/.npy under dataset/). FAMILY defaults to $TARGET_FAMILY, then ett.
pretrain_draft_args() {
  local data=${1,,} scale=$2 family=${3:-${TARGET_FAMILY:-ett}} tag
  tag=$(scale_tag "$scale")
  local -a dims data_flags
  into dims target_dims "$family" || return 1
  if [ "$data" = all_datasets ]; then
    data_flags=(--model_id "draft_pretrain_all_datasets_$tag" --data Utsd --root_path ./dataset/)
  else
    local -a tflags
    into tflags target_args "$data" || return 1
    data_flags=(--model_id "draft_pretrain_$(flag_value --model_id "${tflags[@]}")_$tag"
                --data MultivariateDatasetBenchmark
                --root_path "$(flag_value --root_path "${tflags[@]}")"
                --data_path "$(flag_value --data_path "${tflags[@]}")")
  fi
  printf '%s\n' --task_name pretrain --is_training 1 --model timer_xl_draft "${data_flags[@]}" \
    --seq_len 1536 --test_seq_len 1536 --input_token_len 96 --output_token_len 96 --test_pred_len 96 \
    --batch_size 64 --learning_rate 0.0001 --cosine --tmax 10 --train_epochs 15 --use_norm --valid_last \
    --num_workers 0 "${dims[@]}"
  draft_scale_args "$scale"
}

pretrain_draft_setting() {
  local -a flags
  into flags pretrain_draft_args "$@" || return 1
  setting_of "${flags[@]}"
}

pretrain_draft_ckpt() {
  local setting
  setting=$(pretrain_draft_setting "$@") || return 1
  echo "checkpoints/$setting/checkpoint.pth"
}

# pretrain_draft DATA SCALE [GPUS]: what every pretraining script does.
pretrain_draft() {
  local data=$1 scale=$2 gpus=${3:-1}
  local -a flags
  into flags pretrain_draft_args "$data" "$scale" || return 1
  if [ "${data,,}" != all_datasets ]; then
    ensure_data "${data,,}"
  fi
  train_unless_done "$gpus" "${flags[@]}"
}

# pretrain_script DATA SCALE: the script that pretrains that draft.
pretrain_script() {
  local name="timer_xl_draft_${1,,}_$(scale_tag "$2").sh" dir
  for dir in scripts/pretrain/increased_batch_and_seq_len scripts/pretrain; do
    if [ -f "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  echo "error: no pretraining script $name under scripts/pretrain" >&2
  return 1
}

# ensure_pretrained_draft DATA SCALE FAMILY [GPUS]: run the pretraining script unless its checkpoint exists;
# sets DRAFT_CKPT to the checkpoint path.
ensure_pretrained_draft() {
  local data=$1 scale=$2 family=$3 gpus=${4:-1} script
  DRAFT_CKPT=$(pretrain_draft_ckpt "$data" "$scale" "$family") || return 1
  if [ ! -f "$DRAFT_CKPT" ]; then
    script=$(pretrain_script "$data" "$scale") || return 1
    echo "pretrained draft $DRAFT_CKPT missing: running TARGET_FAMILY=$family $script $gpus"
    TARGET_FAMILY=$family run_script "$script" "$gpus"
  fi
  require_file "$DRAFT_CKPT" "pretrained draft checkpoint"
}

# ---------------------------------------------------------------- distillation
# draft_source DATA: "PRETRAIN_DATA SCALE FAMILY" of the pretrained draft that is distilled for target DATA.
# ETT*/Weather targets (1024/8/2048/1) get the Weather 0.25x draft (256/2/512/1); Traffic/ECL targets
# (512/8/2048/5) get the draft pretrained on their own data with TARGET_FAMILY=ecl (128/2/512/1).
draft_source() {
  case "${1,,}" in
    etth1|etth2|ettm1|ettm2|weather) echo "weather $DRAFT_SCALE ett" ;;
    traffic|ecl) echo "${1,,} $DRAFT_SCALE ecl" ;;
    *) echo "error: no draft source for '$1'" >&2; return 1 ;;
  esac
}

draft_words() {  # draft_source, one word per line
  local src
  src=$(draft_source "$1") || return 1
  printf '%s\n' $src
}

# distill_args DATA [TARGET_CKPT DRAFT_CKPT]: the distillation flags (stochastic draft initialised from the
# pretrained draft, teacher = the fine-tuned target). The two paths are computed when not given.
distill_args() {
  local -a tflags source
  into tflags target_args "$1" || return 1
  into source draft_words "$1" || return 1
  local id target=${2:-} draft=${3:-} name
  id=$(flag_value --model_id "${tflags[@]}") || return 1
  if [ -z "$target" ]; then target=$(target_ckpt "$1") || return 1; fi
  if [ -z "$draft" ]; then draft=$(pretrain_draft_ckpt "${source[@]}") || return 1; fi
  printf '%s\n' --task_name forecast --is_training 1 --model timer_xl_draft \
    --model_id "${id}_draft_distill_stochastic_from_target_${id}" \
    --data "$(flag_value --data "${tflags[@]}")" \
    --root_path "$(flag_value --root_path "${tflags[@]}")" --data_path "$(flag_value --data_path "${tflags[@]}")" \
    --seq_len 672 --test_seq_len 672 --input_token_len 96 --output_token_len 96 --test_pred_len 96
  for name in --d_model --n_heads --d_ff --e_layers; do
    printf '%s\n' "$name" "$(flag_value "$name" "${tflags[@]}")"
  done
  draft_scale_args "$DRAFT_SCALE"
  printf '%s\n' --distill --distill_target_model timer_xl --distill_target_ckpt "$target" \
    --adaptation --pretrain_model_path "$draft" --draft_stochastic --draft_nll_var_reg 0.01 \
    --draft_teacher_noise 0.05 --learning_rate 5e-5 --train_epochs 15 --batch_size 64 --cosine --tmax 10 \
    --valid_last --use_norm --num_workers 0
}

distilled_draft_setting() {
  local -a flags
  into flags distill_args "$1" || return 1
  setting_of "${flags[@]}"
}

distilled_draft_ckpt() {
  local setting
  setting=$(distilled_draft_setting "$1") || return 1
  echo "checkpoints/$setting/checkpoint.pth"
}

# distill_draft DATA [GPUS]: what every distillation script does: make sure the fine-tuned target and the
# pretrained draft exist (running their scripts if not), then distill unless the result exists.
distill_draft() {
  local data=$1 gpus=${2:-1}
  local -a tflags source flags
  into tflags target_args "$data" || return 1
  ensure_data "$(flag_value --model_id "${tflags[@]}")"
  ensure_target "$data"
  into source draft_words "$data" || return 1
  ensure_pretrained_draft "${source[@]}" "$gpus"
  into flags distill_args "$data" "$TARGET_CKPT" "$DRAFT_CKPT" || return 1
  train_unless_done "$gpus" "${flags[@]}"
}

# ensure_distilled_draft DATA [GPUS]: for the speculative-decoding scripts: run the distillation script
# unless the distilled draft exists; sets DISTILLED_CKPT to its path.
ensure_distilled_draft() {
  DISTILLED_CKPT=$(distilled_draft_ckpt "$1") || return 1
  if [ ! -f "$DISTILLED_CKPT" ]; then
    local data=${1,,}
    local script="scripts/distillation/updated_distillation/${data}_timer_xl_draft_from_target_${data}_stochastic.sh"
    echo "distilled draft $DISTILLED_CKPT missing: running $script"
    run_script "$script" "${2:-1}"
  fi
  require_file "$DISTILLED_CKPT" "distilled draft checkpoint"
}

# ================================================================ speculative-decoding tests and sweeps
# spec_test DATA (test_<data>_timer_vs_spec_025x_stochastic.sh) and spec_sweep NAME DATA (the sweep scripts)
# test the fine-tuned Timer-XL target of timer_xl_<data>.sh with its distilled 0.25x stochastic draft.
# Env overrides, for other or tiny models: TARGET_CKPT and DISTILLED_CKPT (checkpoint paths; a set one is used
# as it is, nothing is made), TARGET_FLAGS="..." (the target's run.py flags instead of those of timer_xl_<data>.sh;
# needs TARGET_CKPT; the draft is built from them scaled by --draft_scale_*, 0.25 by default).

SPEC_DEBUG_CSV=spec_decoding_new_stochastic_025x.csv

# abs_path PATH: PATH made absolute without resolving links (a venv's python must stay the venv's).
abs_path() {
  realpath -ms "$1"
}

# spec_setup DATA: make sure the target and the distilled draft exist (running their scripts when missing);
# sets DISTILLED_CKPT (absolute) and SPEC_ARGS: the target's flags for testing its checkpoint, with absolute
# paths so that run.py can start in any folder.
spec_setup() {
  local data=$1
  local -a tflags
  if [ -n "${TARGET_FLAGS:-}" ]; then
    if [ -z "${TARGET_CKPT:-}" ]; then echo "error: TARGET_FLAGS needs TARGET_CKPT (its checkpoint)" >&2; return 1; fi
    read -r -a tflags <<< "$TARGET_FLAGS"
  else
    into tflags target_args "$data" || return 1
  fi
  ensure_data "$(flag_value --model_id "${tflags[@]}")" || return 1
  if [ -z "${TARGET_CKPT:-}" ]; then ensure_target "$data" || return 1; fi
  if [ -z "${DISTILLED_CKPT:-}" ]; then ensure_distilled_draft "$data" || return 1; fi
  require_file "$TARGET_CKPT" "target checkpoint (TARGET_CKPT)" || return 1
  require_file "$DISTILLED_CKPT" "distilled draft checkpoint (DISTILLED_CKPT)" || return 1
  local target root
  target=$(abs_path "$TARGET_CKPT")
  DISTILLED_CKPT=$(abs_path "$DISTILLED_CKPT")
  root=$(flag_value --root_path "${tflags[@]}") || return 1
  SPEC_ARGS=("${tflags[@]}" --root_path "$(abs_path "$root")/" --is_training 0
             --checkpoints "$(dirname "$(dirname "$target")")/" --test_dir "$(basename "$(dirname "$target")")"
             --test_file_name "$(basename "$target")")
  echo "target: $target"
  echo "draft:  $DISTILLED_CKPT"
}

# spec_flags K SIGMA BIAS MODE: one speculative run with the stochastic draft, timed against the target alone.
spec_flags() {
  printf '%s\n' --use_speculative --spec_draft_ckpt "$DISTILLED_CKPT" --draft_stochastic --spec_compare_baseline \
    --trace_inference_breakdown --spec_k "$1" --spec_sigma "$2" --spec_accept_bias "$3" --spec_accept_mode "$4"
}

# last_record FILE: the last record (blank-line separated) of a result file.
last_record() {
  awk -v RS= 'END { print }' "$1"
}

# spec_test DATA: target-only run (BASELINE=1, the default; BASELINE=0 skips it), then the speculative run with
# the per-proposal CSV; prints the accuracy, acceptance and speedup of the latter. Results in the working folder.
# Env: SPEC_K=3 SPEC_SIGMA=0.7 SPEC_BIAS=1.0 SPEC_MODE=tolerance HORIZON=720 BATCH=32, MAX_BATCHES (unset: all).
spec_test() {
  local data=$1
  spec_setup "$data" || return 1
  local -a test spec
  test=(--test_pred_len "${HORIZON:-720}" --batch_size "${BATCH:-32}")
  if [ -n "${MAX_BATCHES:-}" ]; then test+=(--test_max_batches "$MAX_BATCHES"); fi
  if [ "${BASELINE:-1}" = 1 ]; then
    echo "== $data: Timer-XL alone"
    run_py "${SPEC_ARGS[@]}" "${test[@]}" --trace_inference_breakdown || return 1
  fi
  echo "== $data: speculative decoding with the 0.25x stochastic draft"
  into spec spec_flags "${SPEC_K:-3}" "${SPEC_SIGMA:-0.7}" "${SPEC_BIAS:-1.0}" "${SPEC_MODE:-tolerance}" || return 1
  run_py "${SPEC_ARGS[@]}" "${test[@]}" "${spec[@]}" --spec_debug_accept --spec_debug_out "$SPEC_DEBUG_CSV" || return 1
  echo "== last record of result_inference_summary.txt (per-proposal details: $SPEC_DEBUG_CSV)"
  last_record result_inference_summary.txt | grep -E '^(setting|mse|accepted|spec_k|baseline_per_batch_s|measured_cost_ratio_c):'
}

# sweep_max_batches BATCH: --test_max_batches of a sweep run: $MAX_BATCHES, else 100 at batch size 1 and 20
# otherwise (100 and 640 test windows); MAX_BATCHES=all tests the whole split.
sweep_max_batches() {
  local n=${MAX_BATCHES:-}
  if [ -z "$n" ]; then
    if [ "$1" = 1 ]; then n=100; else n=20; fi
  fi
  echo "$n"
}

# spec_sweep NAME DATA: one speculative run (spec_flags, compared with the target alone) per grid point of
#   HORIZONS="336 720" BATCHES="1 32" MODES="tolerance lossless" KS="1 2 3 4" SIGMAS="0.1 0.3 0.7" BIASES="1 2"
# (env lists; the sweep scripts set their own defaults), MAX_BATCHES (sweep_max_batches). run.py starts in
# sweep_results_NAME/ (or SWEEP_DIR), so the result files land there (appended: a rerun adds records); every
# command goes to its commands.txt first. Stops at the first failing run.
# Analysis: python scripts/analysis/parse_sweep_results.py sweep_results_NAME
spec_sweep() {
  local name=$1 data=$2
  spec_setup "$data" || return 1
  local dir=${SWEEP_DIR:-sweep_results_$name} repo=$PWD py=$PY
  mkdir -p "$dir"
  dir=$(abs_path "$dir")
  case $py in */*) py=$(abs_path "$py") ;; esac
  local horizons=${HORIZONS:-336 720} batches=${BATCHES:-1 32} modes=${MODES:-tolerance lossless}
  local ks=${KS:-1 2 3 4} sigmas=${SIGMAS:-0.1 0.3 0.7} biases=${BIASES:-1 2}
  echo "# $(date '+%F %T') sweep $name on $data: HORIZONS='$horizons' BATCHES='$batches' MODES='$modes'" \
    "KS='$ks' SIGMAS='$sigmas' BIASES='$biases' MAX_BATCHES='${MAX_BATCHES:-}'" >> "$dir/commands.txt"
  local horizon batch mode k sigma bias limit n=0
  local -a spec cmd
  for horizon in $horizons; do for batch in $batches; do for mode in $modes; do
  for k in $ks; do for sigma in $sigmas; do for bias in $biases; do
    n=$((n + 1))
    limit=$(sweep_max_batches "$batch")
    into spec spec_flags "$k" "$sigma" "$bias" "$mode" || return 1
    cmd=("$py" -u "$repo/run.py" "${SPEC_ARGS[@]}" --test_pred_len "$horizon" --batch_size "$batch" "${spec[@]}")
    if [ "$limit" != all ]; then cmd+=(--test_max_batches "$limit"); fi
    cmd+=("${EXTRA_ARGS[@]}")
    echo "== $name, run $n: horizon $horizon, batch $batch, $mode, K $k, sigma $sigma, bias $bias"
    { printf '%q ' "${cmd[@]}"; echo; } >> "$dir/commands.txt"
    (cd "$dir" && "${cmd[@]}") || { echo "error: run $n failed: last line of $dir/commands.txt" >&2; return 1; }
  done; done; done; done; done; done
  echo "$n runs; results in $dir"
  echo "analysis: $PY scripts/analysis/parse_sweep_results.py $dir"
}

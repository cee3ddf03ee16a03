# Shared helpers of the experiment scripts; source it from the repository root.
# PY: the project's python (.venv if present). EXTRA_ARGS="--flag value ..." is appended to every
# run.py call (also those of scripts run from a script, and every sweep point); run.py keeps the last
# value of a repeated flag, so EXTRA_ARGS overrides the script's flags.

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

# ensure_data NAME...: copy/verify benchmark files into dataset/ (see dataset/README.md).
ensure_data() {
  "$PY" -m data_provider.fetch "$@"
}

# run_py FLAGS...: python -u run.py FLAGS EXTRA_ARGS
run_py() {
  "$PY" -u run.py "$@" "${EXTRA_ARGS[@]}"
}

# read_flags VAR FILE...: the run.py flags of the flag FILEs (scripts/flags/: one flag, with its value, per line;
# `#` starts a comment) into the array VAR, in order; a flag given twice keeps its last value in run.py.
read_flags() {
  local -n into=$1
  local file line words
  into=()
  for file in "${@:2}"; do
    [ -f "$file" ] || { echo "error: no flag file $file" >&2; return 2; }
    while IFS= read -r line || [ -n "$line" ]; do
      read -r -a words <<< "${line%%#*}"
      [ ${#words[@]} = 0 ] && continue
      if [[ ${words[0]} != --* || ${#words[@]} -gt 2 ]]; then
        echo "error: $file: '$line' is not one run.py flag (with its value)" >&2
        return 2
      fi
      into+=("${words[@]}")
    done < "$file"
  done
}

# checkpoint_of FLAGS...: the checkpoint a training run with these flags writes, inside their --checkpoints
# (cli/paths.py, as run.py computes it).
checkpoint_of() {
  "$PY" -m cli.paths "$@" "${EXTRA_ARGS[@]}"
}

# setting_of FLAGS...: the name of that checkpoint's folder (what --test_dir takes).
setting_of() {
  local ckpt
  ckpt=$(checkpoint_of "$@") || return 1
  basename "$(dirname "$ckpt")"
}

# train GPUS FLAGS...: run.py FLAGS unless their checkpoint exists and its training finished (a resume.pth beside
# it: the training stopped early and resumes); TRAIN=1 retrains. GPUS > 1 runs torchrun with --ddp.
train() {
  local gpus=$1 ckpt
  shift
  ckpt=$(checkpoint_of "$@") || return 1
  if [ "${TRAIN:-0}" != 1 ] && [ -f "$ckpt" ] && [ ! -f "$(dirname "$ckpt")/resume.pth" ]; then
    echo "$ckpt exists; not retraining (TRAIN=1 retrains)"
  elif [ "$gpus" -gt 1 ]; then
    "$PY" -m torch.distributed.run --nproc_per_node "$gpus" run.py --ddp "$@" "${EXTRA_ARGS[@]}"
  else
    run_py "$@"
  fi
}

# make_if_missing CHECKPOINT SCRIPT [ARGS...]: run SCRIPT (with this EXTRA_ARGS) when CHECKPOINT is missing.
make_if_missing() {
  local ckpt=$1 script=$2
  shift 2
  if [ ! -f "$ckpt" ]; then
    echo "$ckpt missing: running $script $*"
    EXTRA_ARGS="${EXTRA_ARGS[*]}" bash "$script" "$@"
  fi
  if [ ! -f "$ckpt" ]; then
    echo "error: $script did not write $ckpt; do the flags here still match that script's?" >&2
    return 1
  fi
}

# sweep OUT [--axis VALUE...]... -- FLAGS...: one run.py FLAGS --axis value ... EXTRA_ARGS per grid point,
# each in its own folder under OUT; finished points are skipped (scripts/sweep.py).
sweep() {
  EXTRA_ARGS="${EXTRA_ARGS[*]}" "$PY" scripts/sweep.py "$@"
}

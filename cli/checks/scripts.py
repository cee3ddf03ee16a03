"""The checks of the benchmark and analysis scripts that build the target (--model) and the draft
(--spec_draft_model) from run.py flags themselves."""
import re

import torch

from cli.checks.checkpoints import check_checkpoint, draft_source, model_source
from cli.checks.combinations import as_given, check_combinations, is_set
from cli.checks.data import check_data
from cli.checks.values import bound_spec_k, check_values
from utils.failures import UsageError


def validate_script(args, rollout, k, checkpoints=None, used=(), renamed=None):
    """run.py's checks for a script that builds the target and the draft: those of a speculative test in `rollout`
    (cached, the stricter, for a script that runs both) with at most k proposals per round, reading checkpoints =
    (target path, draft path), named --target_ckpt and --draft_ckpt (draft path None: a target-only script, no
    draft); with checkpoints None (random weights and windows) the checks of the flags alone. used: as in
    check_combinations. renamed: run.py flag -> the script's flag that set it, for the messages."""
    with_draft = checkpoints is None or checkpoints[1] is not None
    args.is_training, args.use_speculative, args.rollout = 0, with_draft, rollout
    if with_draft:
        args.spec_k = k
        args.spec_draft_ckpt = checkpoints[1] if checkpoints else "(untrained)"  # only ever read from checkpoints
    try:
        check_script_flags(args, checkpoints, used, (renamed or {}).get("spec_k", "--spec_k"))
    except UsageError as error:
        message = str(error)
        for name, script_flag in (renamed or {}).items():
            message = re.sub(rf"--{name}\b", script_flag, message)
        raise UsageError(message) from None


def check_script_flags(args, checkpoints, used, spec_k_flag):
    check_values(args)
    bound_spec_k(args, spec_k_flag)
    check_combinations(args, used)
    if checkpoints is not None:
        check_data(args)
        check_checkpoint(model_source("--target_ckpt", checkpoints[0], args))
        if args.use_speculative:
            check_checkpoint(draft_source("--draft_ckpt", checkpoints[1], args))


def check_not_given(args, replaced):
    """replaced: (run.py flag, what of the script's sets it instead) pairs; such a flag given would do nothing."""
    for name, instead in replaced:
        if is_set(args, name):
            raise UsageError(f"{as_given(args, name)} does nothing here: {instead}")


def check_device(name):
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: only cpu and cuda are supported")

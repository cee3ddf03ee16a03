"""What a run writes: folders it can write in, checkpoint folder names the file system takes, room for the
checkpoint, and a checkpoint folder that is new or was made by the same model and data flags."""
import json
import os
import shutil
import tempfile

from cli.checks.sizes import built_shapes
from cli.flags import FLAG
from cli.paths import CHECKPOINT_FILE, checkpoint_folders
from models import n_parameters
from utils.checkpoint import MANIFEST_FILE, read_manifest
from utils.failures import UsageError


def check_checkpoint_folders(args):
    for name in ("model_id", "des"):
        if os.sep in getattr(args, name) or (os.altsep and os.altsep in getattr(args, name)):
            raise UsageError(f"--{name} {getattr(args, name)} must be a plain name without '{os.sep}': it names the "
                             f"checkpoint folder inside --checkpoints")
    check_output_folder("--checkpoints", args.checkpoints)
    check_free_space(args)
    for folder in checkpoint_folders(args):
        check_name_lengths("--checkpoints", folder)
        check_checkpoint_folder(folder, args)


def check_output_folder(flag, path):
    """path is, or can be made, a folder this process can write in."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a file, not a folder")
    ancestor = existing_ancestor(path)
    if not os.path.isdir(ancestor):
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot write in {ancestor} ({error.strerror})") from None


def existing_ancestor(path):
    """path itself or the nearest folder above it that exists."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_name_lengths(flag, path):
    ancestor = existing_ancestor(path)
    longest = os.pathconf(ancestor, "PC_NAME_MAX")
    for name in os.path.relpath(os.path.abspath(path), ancestor).split(os.sep):
        if len(os.fsencode(name)) > longest:
            raise UsageError(f"{flag}: the folder name {name[:40]}... is {len(os.fsencode(name))} bytes, more than "
                             f"the {longest} the file system allows: shorten --model_id or --des")


# A checkpoint is written next to the one it replaces before the rename: room for two, float32 weights.
CHECKPOINT_COPIES, BYTES_PER_WEIGHT = 2, 4


def check_free_space(args):
    needed = n_parameters(built_shapes(args.model, args)) * BYTES_PER_WEIGHT * CHECKPOINT_COPIES
    ancestor = existing_ancestor(args.checkpoints)
    free = shutil.disk_usage(ancestor).free
    if needed > free:
        raise UsageError(f"--checkpoints {args.checkpoints}: {free / 2 ** 20:.1f} MiB free on its file system, but "
                         f"saving a {args.model} checkpoint needs about {needed / 2 ** 20:.1f} MiB")


def check_checkpoint_folder(folder, args):
    """Training may write into `folder` only if it is new or was made by the same model and data flags."""
    if args.overwrite_checkpoint:
        return
    try:
        recorded = read_manifest(folder)
    except ValueError as error:
        raise UsageError(f"{os.path.join(folder, MANIFEST_FILE)} is damaged ({error}); pass --overwrite_checkpoint "
                         f"to train into that folder anyway") from None
    if recorded is None:
        if os.path.exists(os.path.join(folder, CHECKPOINT_FILE)):
            raise UsageError(f"{folder} holds a {CHECKPOINT_FILE} with no {MANIFEST_FILE} of the flags that made it; "
                             f"pass --overwrite_checkpoint to replace it")
        return
    differing = [f"--{name} {was!r} there, {now!r} now" for name, was, now in training_differences(recorded, args)]
    if differing:
        raise UsageError(f"checkpoint folder {folder} was trained with other flags ({'; '.join(differing)}): change "
                         f"--model_id or --des, or pass --overwrite_checkpoint to replace it")


def training_differences(recorded, args):
    """(flag, recorded value, value now) of every flag that changes training and differs from the manifest (a flag
    the manifest lacks: its default then)."""
    current = json.loads(json.dumps(vars(args)))  # as the manifest stores them
    for name, now in sorted(current.items()):
        was = recorded.get(name, FLAG[name].default)
        if FLAG[name].changes_training and was != now:
            yield name, was, now

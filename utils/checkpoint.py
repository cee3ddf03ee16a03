"""Saving and loading model weights (one loader used everywhere, training.md sections 5-6) and the manifest of
flags next to each checkpoint."""
import json
import os
from pathlib import Path

import torch

from utils.atomic import atomic_write, atomic_write_text


class CheckpointMismatch(ValueError):
    pass


MANIFEST_FILE = "manifest.json"


def save_checkpoint(model, path):
    """Write the trainable weights atomically."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    state = {k: v for k, v in model.state_dict().items() if k not in frozen}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def write_manifest(folder, args):
    """`manifest.json` next to the checkpoint: every flag of the run that wrote it."""
    text = json.dumps(vars(args), indent=1, sort_keys=True) + "\n"
    atomic_write_text(os.path.join(folder, MANIFEST_FILE), text)


def read_manifest(folder):
    """The flags recorded in `folder`, or None when it has no manifest; a damaged one raises ValueError."""
    path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.isfile(path):
        return None
    recorded = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(recorded, dict):
        raise ValueError(f"{path} does not hold a JSON object of flags")
    return recorded


def read_state_dict(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for entry in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(entry), dict) and all(torch.is_tensor(v) for v in obj[entry].values()):
            obj = obj[entry]
            break
    if not (isinstance(obj, dict) and all(torch.is_tensor(v) for v in obj.values())):
        raise CheckpointMismatch(f"{path} does not hold a state dict (a dict of tensors), but a {type(obj).__name__}")
    not_finite = [k for k, v in obj.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if not_finite:
        raise CheckpointMismatch(f"{path} holds NaN or infinite weights ({len(not_finite)} tensors, first "
                                 f"{not_finite[0]}): the run that wrote it diverged")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def map_head_to_mean(state, model, log=print):
    """A deterministic draft initialises a stochastic one: head.* becomes head_mean.*."""
    expected = model.state_dict()
    if "head.weight" in state and "head_mean.weight" not in state and "head_mean.weight" in expected:
        for part in ("weight", "bias"):
            state[f"head_mean.{part}"] = state.pop(f"head.{part}")
        for part in ("weight", "bias"):
            state[f"head_logvar.{part}"] = expected[f"head_logvar.{part}"]
        log("mapped head.* -> head_mean.*; head_logvar.* left at init (bias -2.0)")
    return state


def mismatch_report(path, state, model):
    expected = model.state_dict()
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    missing = sorted(k for k in expected if k not in state and k not in frozen)
    unexpected = sorted(k for k in state if k not in expected)
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in state if k in expected and state[k].shape != expected[k].shape)
    if not (missing or unexpected or shapes):
        return None
    hint = ""
    if any(k.startswith("head_mean.") for k in unexpected):
        hint = " (hint: checkpoint is stochastic: pass --draft_stochastic)"
    elif any(k.startswith("head_mean.") for k in missing) and "head.weight" in state:
        hint = " (hint: checkpoint is not stochastic: drop --draft_stochastic)"
    return (f"checkpoint {path} does not match the model{hint}: "
            f"missing keys ({len(missing)}): {missing}; unexpected keys ({len(unexpected)}): {unexpected}; "
            f"shape mismatches ({len(shapes)}): {shapes}")


def load_checkpoint(model, path, map_head=False):
    """Strictly load `path` into `model` (moved to the model's device); raise listing every mismatch."""
    state = read_state_dict(path)
    if map_head:
        state = map_head_to_mean(state, model)
    problem = mismatch_report(path, state, model)
    if problem:
        raise CheckpointMismatch(problem)
    model.load_state_dict(state, strict=False)
    print(f"loaded {path} ({len(state)} tensors)")
    return model

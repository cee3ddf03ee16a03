"""The checkpoints a run reads (the tested model, the adaptation's start, the distillation teacher, the speculative
draft): each file exists, is a state dict, fits the model these flags build, and was trained with the flags that
change what its weights compute; a file that does not fit is named for what it holds."""
import argparse
import os
from dataclasses import dataclass, replace

from cli.checks.sizes import built_shapes, shapes_only_model
from cli.flags import COMPUTATION_FLAGS, MAY_BE_STOCHASTIC
from cli.paths import tested_checkpoint
from models import config_of, families, family_trait, teacher_config
from utils.checkpoint import (MANIFEST_FILE, CheckpointMismatch, map_head_to_mean, mismatch_report, read_manifest,
                              read_state_dict)
from utils.failures import UsageError


@dataclass(frozen=True)
class CheckpointSource:
    flag: str
    path: str
    model: str  # registry key of the model the file must fit
    flags: argparse.Namespace  # the run's flags
    described_by: str  # the flags that size that model
    map_head: bool = False  # --adaptation into a stochastic draft may map head.* to head_mean.*
    configure: object = config_of  # (family key, flags) -> the configuration that family is built with here


def size_flags(args, prefix=""):
    """The flags, with their values, that size a model built from --{prefix}d_model ... --{prefix}e_layers."""
    dims = " ".join(f"--{prefix}{name} {getattr(args, prefix + name)}" for name in ("d_model", "n_heads", "d_ff",
                                                                                    "e_layers"))
    return f"{dims} --input_token_len {args.input_token_len} --output_token_len {args.output_token_len}"


def draft_size_flags(args):
    return f"{size_flags(args)} --draft_scale_* --draft_stochastic {args.draft_stochastic}"


def checkpoint_sources(args):
    if not args.is_training:
        yield model_source("--test_dir/--test_file_name", tested_checkpoint(args), args)
    if args.adaptation:
        yield replace(model_source("--pretrain_model_path", args.pretrain_model_path, args),
                      map_head=MAY_BE_STOCHASTIC.holds(args) and args.draft_stochastic)
    if args.distill:
        teacher = args.distill_target_model
        yield CheckpointSource("--distill_target_ckpt", args.distill_target_ckpt, teacher, args,
                               f"--distill_target_model {teacher} {size_flags(args, 'distill_target_')}",
                               configure=teacher_config)
    if args.use_speculative:
        yield draft_source("--spec_draft_ckpt", args.spec_draft_ckpt, args)


def model_source(flag, path, args):
    """The checkpoint of --model at path, named by flag."""
    scaled = family_trait(args.model, "scaled_by_draft_flags")
    return CheckpointSource(flag, path, args.model, args,
                            f"--model {args.model} {draft_size_flags(args) if scaled else size_flags(args)}")


def draft_source(flag, path, args):
    """The checkpoint of the speculative draft --spec_draft_model at path, named by flag."""
    return CheckpointSource(flag, path, args.spec_draft_model, args,
                            f"--spec_draft_model {args.spec_draft_model} {draft_size_flags(args)}")


def check_checkpoint(source):
    state = read_checkpoint_file(source.flag, source.path)
    check_trained_with(source)
    model = built_shapes(source.model, source.flags, source.configure)
    if source.map_head:
        map_head_to_mean(state, model, log=lambda *_: None)
    problem = mismatch_report(source.path, state, model)
    if problem is None:
        return
    found = identify(state, source)
    if found and found[0] != source.model:
        raise UsageError(f"{source.flag} {source.path} holds {describe(*found)}, but these flags need "
                         f"{describe(source.model, model.stochastic)}")
    raise UsageError(f"{source.flag} {source.path} does not fit {source.described_by}: {problem}")


def check_trained_with(source):
    """The manifest next to a checkpoint (if any) records the flags that trained it: those that change the
    computation without changing a shape must be the same now."""
    folder = os.path.dirname(source.path)
    try:
        recorded = read_manifest(folder)
    except ValueError as error:
        raise UsageError(f"{source.flag}: {os.path.join(folder, MANIFEST_FILE)} is damaged ({error})") from None
    differing = [f"--{name} {recorded[name]!r} there, {getattr(source.flags, name)!r} now"
                 for name in COMPUTATION_FLAGS
                 if recorded is not None and name in recorded and recorded[name] != getattr(source.flags, name)]
    if differing:
        raise UsageError(f"{source.flag} {source.path} was trained with other flags ({'; '.join(differing)}, "
                         f"from {os.path.join(folder, MANIFEST_FILE)}): give the values it was trained with")


def read_checkpoint_file(flag, path):
    if not os.path.isfile(path):
        raise UsageError(f"{flag} {path}: checkpoint file not found (or not a file)")
    try:
        return read_state_dict(path)
    except CheckpointMismatch as error:  # read, but not a state dict
        raise UsageError(f"{flag}: {error}") from None
    except Exception as error:  # torch.load of arbitrary bytes fails in arbitrary ways (KeyError, EOFError, ...)
        reason = " ".join([type(error).__name__ + ":"] + str(error).strip().splitlines()[:1])
        raise UsageError(f"{flag} {path}: not a readable checkpoint (truncated or not written by torch.save; "
                         f"{reason})") from None


def describe(key, stochastic):
    return f"a stochastic {key} model ({key} --draft_stochastic)" if stochastic else f"a {key} model"


def identify(state, source):
    """What a checkpoint that does not fit the flags holds instead: (model key, stochastic) of the model built as
    the source's is whose names and shapes it matches exactly, or None."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for key in families():
        try:
            config = source.configure(key, source.flags)
        except ValueError:  # flags that family cannot be built from
            continue
        can_be_stochastic = family_trait(key, "can_be_stochastic")
        for stochastic in (False, True) if can_be_stochastic else (False,):
            candidate = replace(config, stochastic=stochastic) if can_be_stochastic else config
            expected = shapes_only_model(key, candidate).state_dict()
            if shapes == {k: tuple(v.shape) for k, v in expected.items()}:
                return key, stochastic
    return None

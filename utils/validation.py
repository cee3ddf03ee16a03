"""Start-up validation, the one place that checks flags: every mistake in the flags, in the data file and in the
checkpoints a run reads or writes becomes a UsageError whose one-line message names the flag, file or value and
what would be valid. run.py calls `validate` before any model or data loader is built."""
import contextlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from data_provider.data_factory import DATA_DICT, reads_a_folder
from data_provider.data_loader import MultivariateDatasetBenchmark
from data_provider.readers import READERS, DataFileError, read_named_series
from data_provider.splits import StandardScaler, count_windows, file_stem, split_borders
from models import as_teacher, build_model, config_of, families, family_trait, n_parameters
from utils.checkpoint import (MANIFEST_FILE, CheckpointMismatch, map_head_to_mean, mismatch_report, read_manifest,
                              read_state_dict)
from utils.failures import print_error
from utils.flags import COMPUTATION_FLAGS, changes_the_model_or_data, flag_default
from cli.paths import make_setting
from utils.tools import LRADJ_GAMMA

TARGET_COLUMN = "OT"


class UsageError(Exception):
    """A mistake in what the user asked for (not a bug): reported as one line, exit status 2."""


@contextlib.contextmanager
def exit_on_usage_error():
    """A UsageError raised inside becomes one line on stderr and exit status 2."""
    try:
        yield
    except UsageError as error:
        print_error(error)
        sys.exit(2)


def validate(args):
    check_values(args)
    bound_spec_k(args)
    check_combinations(args)
    check_data(args)
    for source in checkpoint_sources(args):
        check_checkpoint(source)
    check_output_folder("the working folder (result files, test_results/)", ".")
    if args.is_training:
        check_checkpoint_folders(args)


# ---------------------------------------------------------------- single values

MODEL_FLAGS = ("model", "distill_target_model", "spec_draft_model")
CHOICES = {
    "task_name": ("forecast", "pretrain"),
    "is_training": (0, 1),
    "data": tuple(DATA_DICT),
    "spec_accept_mode": ("tolerance", "lossless"),
    "rollout": ("sliding", "cached"),
    "cache_stats": ("trailing", "frozen"),
    "distill_vali": ("truth", "teacher"),
    "activation": ("relu", "gelu"),
    "lradj": (*LRADJ_GAMMA, "constant"),
}
AT_LEAST_ONE = ("seq_len", "input_token_len", "output_token_len", "test_seq_len", "test_pred_len", "d_model",
                "n_heads", "d_ff", "e_layers", "distill_target_d_model", "distill_target_n_heads",
                "distill_target_d_ff", "distill_target_e_layers", "batch_size", "itr", "train_epochs", "spec_k",
                "spec_residual_max_tries", "tmax")
AT_LEAST_ZERO = ("num_workers", "patience", "weight_decay", "cache_max_tokens", "spec_debug_max_batches",
                 "draft_nll_var_reg", "draft_teacher_noise", "distill_rollout_patches")
ABOVE_ZERO = ("learning_rate", "spec_sigma", "draft_scale_d_model", "draft_scale_n_heads", "draft_scale_d_ff",
              "draft_scale_e_layers")


def check_values(args):
    for name, valid in [*CHOICES.items(), *((flag, families()) for flag in MODEL_FLAGS)]:
        value = getattr(args, name)
        if value not in valid:
            raise UsageError(f"--{name} {value!r} is not one of: {', '.join(map(str, valid))}")
    for name in AT_LEAST_ONE + AT_LEAST_ZERO + ABOVE_ZERO + ("dropout", "subset_rand_ratio", "spec_accept_bias"):
        if not math.isfinite(getattr(args, name)):
            raise UsageError(f"--{name} {getattr(args, name)} must be a finite number")
    ranges = [(AT_LEAST_ONE, lambda v: v >= 1, ">= 1"), (AT_LEAST_ZERO, lambda v: v >= 0, ">= 0"),
              (ABOVE_ZERO, lambda v: v > 0, "> 0"), (("dropout",), lambda v: 0 <= v < 1, "in [0, 1)"),
              (("subset_rand_ratio",), lambda v: 0 < v <= 1, "in (0, 1]"),
              (("spec_accept_bias",), lambda v: v >= 1, ">= 1"),
              (("seed",), lambda v: 0 <= v < 2 ** 32, "in [0, 2**32) (NumPy's seed range)"),
              (("test_max_batches",), lambda v: v >= 1, ">= 1 (or left out for all batches)"),
              (("spec_calib_windows",), lambda v: v >= 1, ">= 1"),
              (("spec_mse_budget",), lambda v: v >= 0, "a percentage >= 0"),
              (("spec_calib_sigmas",), lambda v: v > 0, "> 0")]
    for names, ok, valid in ranges:
        check_numbers({name: getattr(args, name) for name in names}, ok, valid)
    for name in ("seq_len", "test_seq_len"):
        if getattr(args, name) % args.input_token_len:
            raise UsageError(f"--{name} {getattr(args, name)} is not a multiple of --input_token_len "
                             f"{args.input_token_len} (the token length)")
    for prefix, model in unscaled_models(args):
        check_heads(prefix, model, args)


def check_numbers(values, ok, valid):
    """values: flag -> a number or a list of numbers, each of which must pass ok (described by valid); None: the
    flag was left out."""
    for name, value in values.items():
        for number in value if isinstance(value, list) else [] if value is None else [value]:
            if not (math.isfinite(number) and ok(number)):
                raise UsageError(f"--{name} {number} must be {valid}")


def unscaled_models(args):
    """(flag prefix, model key) of every model built with the sizes as given (drafts scale them and always fit)."""
    if not family_trait(args.model, "scaled_by_draft_flags"):
        yield "", args.model
    if args.use_speculative and not family_trait(args.spec_draft_model, "scaled_by_draft_flags"):
        yield "", args.spec_draft_model
    if args.distill:
        yield "distill_target_", args.distill_target_model


def check_heads(prefix, model, args):
    d_model, n_heads = getattr(args, f"{prefix}d_model"), getattr(args, f"{prefix}n_heads")
    if d_model % n_heads:
        raise UsageError(f"--{prefix}d_model {d_model} is not divisible by --{prefix}n_heads {n_heads}")
    multiple = family_trait(model, "head_dim_multiple") or 1
    if (d_model // n_heads) % multiple:
        raise UsageError(f"--{prefix}d_model / --{prefix}n_heads = {d_model // n_heads} must be a multiple of "
                         f"{multiple} for {model}")


def bound_spec_k(args, name="--spec_k"):
    """A round never proposes more patches than the horizon has; a larger K would only make the warm-up measure
    the cost of every K up to it. name: the flag that set --spec_k, for the note."""
    patches = math.ceil(args.test_pred_len / args.output_token_len)
    if args.use_speculative and args.spec_k > patches:
        print(f"note: {name} {args.spec_k} is more than the {patches} patch(es) of the horizon (--test_pred_len "
              f"{args.test_pred_len} / --output_token_len {args.output_token_len}): using K = {patches}")
        args.spec_k = patches


# ---------------------------------------------------------------- combinations

def model_or_draft_has(trait):
    """args -> whether --model, or the --spec_draft_model of a speculative run, declares the trait."""
    return lambda args: family_trait(args.model, trait) or (args.use_speculative and
                                                           family_trait(args.spec_draft_model, trait))


def families_with(trait):
    keys = "/".join(key for key in families() if family_trait(key, trait))
    return f"--model {keys} (or --use_speculative with such a --spec_draft_model)"


uses_a_draft = model_or_draft_has("scaled_by_draft_flags")
may_be_stochastic = model_or_draft_has("can_be_stochastic")


@dataclass(frozen=True)
class Needs:
    flags: tuple
    holds: object  # args -> bool: the combination in which the flags do something
    what: str


NEEDS = (
    Needs(("spec_draft_model", "spec_draft_ckpt", "spec_k", "spec_accept_bias", "spec_accept_mode",
           "spec_residual_max_tries", "spec_adaptive", "spec_compare_baseline", "spec_debug_accept"),
          lambda a: a.use_speculative, "--use_speculative"),
    Needs(("spec_sigma",), lambda a: a.use_speculative or a.target_sample, "--use_speculative or --target_sample"),
    Needs(("spec_mse_budget",), lambda a: a.use_speculative, "--use_speculative"),
    Needs(("spec_calib_windows", "spec_calib_sigmas"), lambda a: a.spec_mse_budget is not None, "--spec_mse_budget"),
    Needs(("spec_debug_out", "spec_debug_max_batches"), lambda a: a.spec_debug_accept, "--spec_debug_accept"),
    Needs(("distill_target_model", "distill_target_ckpt", "distill_target_d_model", "distill_target_n_heads",
           "distill_target_d_ff", "distill_target_e_layers", "draft_teacher_noise", "distill_rollout_patches",
           "distill_vali"),
          lambda a: a.distill, "--distill"),
    Needs(("draft_nll_var_reg",), lambda a: a.draft_stochastic, "--draft_stochastic"),
    Needs(("pretrain_model_path",), lambda a: a.adaptation, "--adaptation"),
    Needs(("draft_scale_d_model", "draft_scale_n_heads", "draft_scale_d_ff", "draft_scale_e_layers"), uses_a_draft,
          families_with("scaled_by_draft_flags")),
    Needs(("draft_stochastic",), may_be_stochastic, families_with("can_be_stochastic")),
    Needs(("test_dir", "test_file_name", "target_sample"), lambda a: not a.is_training, "--is_training 0"),
    Needs(("overwrite_checkpoint",), lambda a: a.is_training, "--is_training 1"),
    Needs(("tmax",), lambda a: a.cosine, "--cosine"),
    Needs(("lradj",), lambda a: not a.cosine, "no --cosine (--cosine sets the schedule)"),
    Needs(("last_token",), lambda a: a.covariate, "--covariate"),
    Needs(("devices",), lambda a: a.dp, "--dp"),
    Needs(("cache_max_tokens", "cache_stats"), lambda a: a.rollout == "cached", "--rollout cached"),
)


def is_set(args, name):
    """The flag differs from its default (the --distill_target_* sizes default to the target's sizes)."""
    default = flag_default(name)
    if default is None and name.startswith("distill_target_"):
        default = getattr(args, name.removeprefix("distill_target_"))
    return getattr(args, name) != default


def as_given(args, name):
    value = getattr(args, name)
    return f"--{name}" if isinstance(value, bool) else f"--{name} {value}"


def builds(args, key):
    """The run builds a model of family key: the forecaster, the speculative draft or the teacher."""
    return key in (args.model, args.use_speculative and args.spec_draft_model, args.distill and args.distill_target_model)


def family_flag_rules():
    """A flag that families declare as their own (own_flags) does something only when one of them is built."""
    owners = {}
    for key in families():
        for name in family_trait(key, "own_flags") or ():
            owners.setdefault(name, []).append(key)
    return [Needs((name,), lambda args, keys=tuple(keys): any(builds(args, key) for key in keys),
                  " or ".join(f"--model/--spec_draft_model/--distill_target_model {key}" for key in keys))
            for name, keys in owners.items()]


def check_combinations(args, used=()):
    """used: flags a script reads itself, whatever the models built (step_costs.py's --n_vars)."""
    for rule in NEEDS + tuple(family_flag_rules()):
        for name in rule.flags:
            if is_set(args, name) and not rule.holds(args) and name not in used:
                raise UsageError(f"{as_given(args, name)} does nothing without {rule.what}")
    if args.distill and not args.distill_target_ckpt:
        raise UsageError("--distill needs --distill_target_ckpt (the teacher's checkpoint)")
    if args.distill_rollout_patches:
        check_rollout_distillation(args)
    if args.use_speculative and args.spec_mse_budget is not None:
        for name in ("spec_sigma", "spec_adaptive"):
            if is_set(args, name):
                raise UsageError(f"{as_given(args, name)} does nothing with --spec_mse_budget: the calibration chooses "
                                 f"sigma and K (--spec_calib_sigmas, K 1..--spec_k and adaptive)")
    if args.use_speculative:
        if not args.spec_draft_ckpt:
            raise UsageError("--use_speculative needs --spec_draft_ckpt (the draft's checkpoint)")
        if args.input_token_len != args.output_token_len:
            raise UsageError(f"speculative decoding needs --input_token_len == --output_token_len "
                             f"(got {args.input_token_len} and {args.output_token_len})")
        if args.target_sample and not args.spec_compare_baseline:
            raise UsageError("--target_sample with --use_speculative changes only the target-only baseline: "
                             "add --spec_compare_baseline")
    if args.rollout == "cached" and args.covariate:
        raise UsageError("--rollout cached cannot reproduce --covariate attention (target tokens attend to later "
                         "covariate tokens); use --rollout sliding")
    if args.rollout == "cached" and args.input_token_len != args.output_token_len:
        raise UsageError(f"--rollout cached needs --input_token_len == --output_token_len "
                         f"(got {args.input_token_len} and {args.output_token_len})")
    check_model_combinations(args)
    if args.ddp and args.dp:
        raise UsageError("--ddp and --dp exclude each other; pick one")
    if args.dp and not torch.cuda.is_available():
        raise UsageError(f"--dp needs CUDA devices (--devices {args.devices}); none is available")


def check_rollout_distillation(args):
    """--distill_rollout_patches grows each window with the teacher's cached rollout and trains the student on
    every token of it, as a cached draft meets it."""
    flag = f"--distill_rollout_patches {args.distill_rollout_patches}"
    if family_trait(args.model, "one_call_forecaster"):
        raise UsageError(f"{flag}: --model {args.model} already learns the teacher's rollout of the "
                         f"--ttm_patches patches after each window; leave it out")
    if family_trait(args.distill_target_model, "one_call_forecaster"):
        raise UsageError(f"{flag}: the teacher --distill_target_model {args.distill_target_model} keeps no KV cache")
    if args.covariate or args.rope_position == "flat" or args.input_token_len != args.output_token_len:
        raise UsageError(f"{flag} rolls the teacher out with --rollout cached, which needs --input_token_len == "
                         f"--output_token_len, no --covariate and --rope_position time")


def check_model_combinations(args):
    """Flat RoPE positions cannot be cached; TTM learns the K*P points after each window; the model
    can be built from the flags; speculative decoding needs a one-patch-per-token target and a
    one-call draft of at least --spec_k patches."""
    if args.rollout == "cached" and args.rope_position == "flat":
        raise UsageError("--rollout cached cannot be used with --rope_position flat (OpenLTM's position c*N + n "
                         "shifts every variable c >= 1 as the context grows); use --rollout sliding")
    if family_trait(args.model, "one_call_forecaster") and args.rollout == "cached":
        raise UsageError(f"--model {args.model} forecasts from its window alone and keeps no KV cache: "
                         f"test it with --rollout sliding")
    if family_trait(args.model, "one_call_forecaster") and args.is_training:
        if not args.nonautoregressive:
            raise UsageError(f"--model {args.model} trains on the points after each window: add --nonautoregressive")
        if args.output_token_len != args.ttm_patches * args.input_token_len:
            raise UsageError(f"--model {args.model} trains with --output_token_len = --ttm_patches * "
                             f"--input_token_len = {args.ttm_patches * args.input_token_len} (got {args.output_token_len})")
    model = built_shapes(args.model, args)  # sizes a family refuses (e.g. TTM's) stop the run here
    check_memory(args, model)
    if args.use_speculative:
        from speculative.engine import check_one_call
        try:
            check_one_call(model, built_shapes(args.spec_draft_model, args), args.spec_k)
        except ValueError as error:
            raise UsageError(f"--model {args.model} with --spec_draft_model {args.spec_draft_model}: {error}") from None


# Bytes per parameter: float32 weights; training adds their gradients and Adam's two moments.
BYTES_PER_PARAMETER = {0: 4, 1: 16}


def check_memory(args, model):
    """Sizes whose parameters alone cannot fit in the memory the run would use are refused before anything is
    allocated (activations come on top, so passing this is no promise)."""
    needed = n_parameters(model) * BYTES_PER_PARAMETER[args.is_training]
    where, available = run_memory(args)
    if needed > available:
        raise UsageError(f"--model {args.model} with --d_model {args.d_model} --d_ff {args.d_ff} --e_layers "
                         f"{args.e_layers} has {n_parameters(model):,} parameters: about {needed / 2 ** 30:.1f} GiB"
                         f"{' with gradients and Adam state' if args.is_training else ''}, more than the "
                         f"{available / 2 ** 30:.1f} GiB of {where}")


def run_memory(args):
    """(what, bytes) of the memory the run's models live in: the GPU run.py picks, or the machine's RAM."""
    if torch.cuda.is_available() and 0 <= args.gpu < torch.cuda.device_count():
        return f"cuda:{args.gpu}", torch.cuda.get_device_properties(args.gpu).total_memory
    return "this machine's memory", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def built_shapes(key, args, configure=config_of):
    """shapes_only_model of family key configured from args, a size mistake it raises as a UsageError."""
    try:
        return shapes_only_model(key, configure(key, args))
    except ValueError as error:
        raise UsageError(f"{key}: {error}") from None


# ---------------------------------------------------------------- data

def check_data(args):
    if reads_a_folder(args.data):
        check_data_folder(args.root_path)
        return check_variables(args, 1, f"the files under --root_path {args.root_path}")
    path = os.path.join(args.root_path, args.data_path)
    if not os.path.isdir(args.root_path):
        raise UsageError(f"--root_path {args.root_path}: no such folder")
    if not os.path.isfile(path):
        raise UsageError(f"--data_path {args.data_path}: no file {path} ({files_in(args.root_path)})")
    try:
        values, column_names = read_named_series(path)
    except DataFileError as error:
        raise UsageError(f"--data_path: {error}") from None
    if path.endswith(".csv"):
        check_target_column(path, args.covariate)
    for flag in ("train", "val", "test") if args.is_training else ("test",):
        check_split_fits(args, path, len(values), flag)
    if args.use_speculative and args.spec_mse_budget is not None:
        check_calibration_split(args, path, len(values))
    check_scaling(values, column_names, split_borders(file_stem(args.data_path), len(values), args.seq_len)["train"][1],
                  path)
    multivariate = DATA_DICT[args.data] is MultivariateDatasetBenchmark
    check_variables(args, values.shape[1] if multivariate else 1, f"--data {args.data} --data_path {path}")


def check_variables(args, n_vars, data):
    """A model built for a fixed number of variables (a channel-mixing TTM, --n_vars) gets windows of n_vars."""
    for key in [args.model] + ([args.spec_draft_model] if args.use_speculative else []):
        fixed = getattr(built_shapes(key, args), "n_vars", None)
        if fixed is not None and fixed != n_vars:
            raise UsageError(f"--n_vars {fixed} does not match the {n_vars} variable(s) per window of {data}: "
                             f"{key} mixes channels over exactly --n_vars variables")


def files_in(folder):
    names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1] in READERS)
    return f"data files there: {', '.join(names)}" if names else "the folder holds no .csv, .txt, .npz or .npy file"


def check_data_folder(root):
    if not os.path.isdir(root):
        raise UsageError(f"--root_path {root}: no such folder")
    for _, _, names in os.walk(root):
        if any(n.endswith((".csv", ".npy")) for n in names):
            return
    raise UsageError(f"--root_path {root}: no .csv or .npy file in it or below it")


def check_target_column(path, covariate):
    columns = list(pd.read_csv(path, nrows=0, encoding="utf-8").columns)
    if TARGET_COLUMN not in columns:
        raise UsageError(f"--data_path: {path} has no target column '{TARGET_COLUMN}' (columns: "
                         f"{', '.join(map(str, columns))})")
    if covariate and columns[-1] != TARGET_COLUMN:
        raise UsageError(f"--covariate predicts the last column, but the last column of {path} is "
                         f"'{columns[-1]}', not '{TARGET_COLUMN}'")


def check_scaling(values, column_names, train_end, path):
    """The loaders standardise every column with its train-split statistics and compute in float32: a series that
    is constant throughout has nothing to learn, and a column whose std an outlier sets so high that most of its
    other values become equal in float32 would be learnt as a flat line."""
    scaler = StandardScaler().fit(values[:train_end])
    if scaler.constant.all():
        raise UsageError(f"--data_path: every column of {path} is constant over its train split (rows 0 to "
                         f"{min(train_end, len(values))}): there is nothing to forecast")
    scaled = scaler.transform(values).astype("float32")
    kept, raw = distinct_counts(scaled), distinct_counts(values)
    for col in range(values.shape[1]):
        if kept[col] < raw[col] / 2:
            row = int(abs(scaled[:, col]).argmax())
            raise UsageError(f"--data_path: column '{column_names[col]}' of {path} is squashed by scaling: an "
                             f"outlier ({values[row, col]:g} at data row {row}) sets its std to "
                             f"{scaler.scale[col]:.3g}, so most of its other values become equal in float32; "
                             f"fix or remove the outlier")


def distinct_counts(matrix):
    ordered = np.sort(matrix, axis=0)
    return (np.diff(ordered, axis=0) != 0).sum(axis=0) + 1


def check_calibration_split(args, path, rows):
    start, end = split_borders(file_stem(args.data_path), rows, args.test_seq_len)["val"]
    if count_windows(start, end, rows, args.test_seq_len, args.test_pred_len) < 1:
        raise UsageError(f"--spec_mse_budget calibrates on the validation split, and that of {path} holds no window "
                         f"of --test_seq_len {args.test_seq_len} + --test_pred_len {args.test_pred_len}")


def check_split_fits(args, path, rows, flag):
    length_flag, horizon_flag = ("test_seq_len", "test_pred_len") if flag == "test" else ("seq_len", "output_token_len")
    length, horizon = getattr(args, length_flag), getattr(args, horizon_flag)
    start, end = split_borders(file_stem(args.data_path), rows, length)[flag]
    if count_windows(start, end, rows, length, horizon) >= 1:
        return
    room = min(end, rows) - start - length if start >= 0 else 0  # rows left for the horizon after one context
    if flag == "test" and room >= 1:
        raise UsageError(f"--test_pred_len {horizon} is longer than the test split of {path} allows after "
                         f"--test_seq_len {length}: the longest that fits is {room}")
    raise UsageError(f"{path} has too few rows ({rows}): its {flag} split (rows {start} to {min(end, rows)}) holds "
                     f"no window of --{length_flag} {length} + --{horizon_flag} {horizon}")


# ---------------------------------------------------------------- checkpoints read

@dataclass(frozen=True)
class CheckpointSource:
    flag: str
    path: str
    model: str  # registry key of the model the file must fit
    model_args: object
    described_by: str  # the flags that size that model
    map_head: bool = False  # --adaptation into a stochastic draft may map head.* to head_mean.*
    configure: object = config_of  # (family key, model_args) -> the configuration it is built with here


def sizes(args, prefix=""):
    dims = " ".join(f"--{prefix}{name} {getattr(args, prefix + name)}" for name in ("d_model", "n_heads", "d_ff",
                                                                                    "e_layers"))
    return f"{dims} --input_token_len {args.input_token_len} --output_token_len {args.output_token_len}"


def draft_sizes(args):
    return f"{sizes(args)} --draft_scale_* --draft_stochastic {args.draft_stochastic}"


def checkpoint_sources(args):
    if not args.is_training:
        yield model_source("--test_dir/--test_file_name", os.path.join(args.checkpoints, args.test_dir,
                                                                      args.test_file_name), args)
    if args.adaptation:
        yield replace(model_source("--pretrain_model_path", args.pretrain_model_path, args),
                       map_head=may_be_stochastic(args) and args.draft_stochastic)
    if args.distill:
        yield CheckpointSource("--distill_target_ckpt", args.distill_target_ckpt, args.distill_target_model, args,
                               f"--distill_target_model {args.distill_target_model} {sizes(args, 'distill_target_')}",
                               configure=teacher_of)
    if args.use_speculative:
        yield draft_source("--spec_draft_ckpt", args.spec_draft_ckpt, args)


def model_source(flag, path, args):
    """The checkpoint of --model at path, named by flag."""
    scaled = family_trait(args.model, "scaled_by_draft_flags")
    return CheckpointSource(flag, path, args.model, args,
                            f"--model {args.model} {draft_sizes(args) if scaled else sizes(args)}")


def draft_source(flag, path, args):
    """The checkpoint of the speculative draft --spec_draft_model at path, named by flag."""
    return CheckpointSource(flag, path, args.spec_draft_model, args,
                            f"--spec_draft_model {args.spec_draft_model} {draft_sizes(args)}")


def check_checkpoint(source):
    state = read_checkpoint_file(source.flag, source.path)
    check_trained_with(source)
    model = built_shapes(source.model, source.model_args, source.configure)
    if source.map_head:
        map_head_to_mean(state, model, log=lambda *_: None)
    problem = mismatch_report(source.path, state, model)
    if problem is None:
        return
    found = identify(state, source.model_args, source.configure)
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
    differing = [f"--{name} {recorded[name]!r} there, {getattr(source.model_args, name)!r} now"
                 for name in COMPUTATION_FLAGS
                 if recorded is not None and name in recorded and recorded[name] != getattr(source.model_args, name)]
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


def teacher_of(key, args):
    """The configuration of family key as the distillation teacher of these flags."""
    return as_teacher(config_of(key, args), args)


def shapes_only_model(key, config):
    """The model on the meta device: its state dict has every name and shape, but no memory and no init cost."""
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):
        return build_model(key, config)


def describe(key, stochastic):
    return f"a stochastic {key} model ({key} --draft_stochastic)" if stochastic else f"a {key} model"


def identify(state, model_args, configure=config_of):
    """What a checkpoint that does not fit the flags holds instead: (model key, stochastic) of the model built from
    the same flags whose names and shapes it matches exactly, or None."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for key in families():
        try:
            config = configure(key, model_args)
        except ValueError:  # flags that family cannot be built from
            continue
        for stochastic in (False, True) if family_trait(key, "can_be_stochastic") else (False,):
            candidate = replace(config, stochastic=stochastic) if family_trait(key, "can_be_stochastic") else config
            expected = shapes_only_model(key, candidate).state_dict()
            if shapes == {k: tuple(v.shape) for k, v in expected.items()}:
                return key, stochastic
    return None


# ---------------------------------------------------------------- checkpoint folders written

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


def checkpoint_folders(args):
    """The folders a training run writes its checkpoints in, one per --itr."""
    return [os.path.join(args.checkpoints, make_setting(args, ii)) for ii in range(args.itr)]


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
    model = shapes_only_model(args.model, config_of(args.model, args))
    needed = n_parameters(model) * BYTES_PER_WEIGHT * CHECKPOINT_COPIES
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
        if os.path.exists(os.path.join(folder, "checkpoint.pth")):
            raise UsageError(f"{folder} holds a checkpoint.pth with no {MANIFEST_FILE} of the flags that made it; "
                             f"pass --overwrite_checkpoint to replace it")
        return
    current = json.loads(json.dumps(vars(args)))  # as the manifest stores them
    differing = [f"--{name} {recorded.get(name, flag_default(name))!r} there, {value!r} now"
                 for name, value in sorted(current.items())
                 if changes_the_model_or_data(name) and recorded.get(name, flag_default(name)) != value]
    if differing:
        raise UsageError(f"checkpoint folder {folder} was trained with other flags ({'; '.join(differing)}): change "
                         f"--model_id or --des, or pass --overwrite_checkpoint to replace it")


# ---------------------------------------------------------------- scripts that build the models themselves

def validate_script(args, rollout, k, checkpoints=None, used=(), renamed=None):
    """run.py's checks for a benchmark or analysis script that builds the target (--model) and the draft
    (--spec_draft_model) from run.py flags: those of a speculative test in `rollout` (cached, the stricter, for
    a script that runs both) with at most k proposals per round, reading checkpoints = (target path, draft
    path), named --target_ckpt and --draft_ckpt (draft path None: a target-only script, no draft); with
    checkpoints None (random weights and windows) the checks of the flags alone. used: as in
    check_combinations. renamed: run.py flag -> the script's flag that set it, for the messages."""
    with_draft = checkpoints is None or checkpoints[1] is not None
    args.is_training, args.use_speculative, args.rollout = 0, with_draft, rollout
    if with_draft:
        args.spec_k = k
        args.spec_draft_ckpt = checkpoints[1] if checkpoints else "(untrained)"  # only ever read from checkpoints
    try:
        check_values(args)
        bound_spec_k(args, (renamed or {}).get("spec_k", "--spec_k"))
        check_combinations(args, used)
        if checkpoints is not None:
            check_data(args)
            check_checkpoint(model_source("--target_ckpt", checkpoints[0], args))
            if with_draft:
                check_checkpoint(draft_source("--draft_ckpt", checkpoints[1], args))
    except UsageError as error:
        message = str(error)
        for name, script_flag in (renamed or {}).items():
            message = re.sub(rf"--{name}\b", script_flag, message)
        raise UsageError(message) from None


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

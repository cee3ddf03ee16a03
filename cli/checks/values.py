"""Single values: each flag's declared choices and range, token lengths that divide the context, attention heads
that divide the width."""
import math

from cli.flags import FLAGS
from models import family_trait
from utils.failures import UsageError


def check_values(args):
    for flag in FLAGS:
        check_value(flag, getattr(args, flag.name))
    for name in ("seq_len", "test_seq_len"):
        if getattr(args, name) % args.input_token_len:
            raise UsageError(f"--{name} {getattr(args, name)} is not a multiple of --input_token_len "
                             f"{args.input_token_len} (the token length)")
    for prefix, model in unscaled_models(args):
        check_heads(prefix, model, args)


def check_value(flag, value):
    valid = flag.valid_values()
    if valid and value not in valid:
        raise UsageError(f"--{flag.name} {value!r} is not one of: {', '.join(map(str, valid))}")
    if flag.range:
        for number in numbers_in(value):
            if not math.isfinite(number):
                raise UsageError(f"--{flag.name} {number} must be a finite number")
        check_numbers({flag.name: value}, flag.range.holds, flag.range.text)


def numbers_in(value):
    """A flag's value as a list of numbers: nargs flags hold a list, a flag left out without a default None."""
    return value if isinstance(value, list) else [] if value is None else [value]


def check_numbers(values, ok, valid):
    """values: flag -> a number or a list of numbers, each of which must pass ok (described by valid); None: the
    flag was left out."""
    for name, value in values.items():
        for number in numbers_in(value):
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

"""Combinations of flags: a flag given outside the combination its declaration needs does nothing, and some
combinations cannot work (a cached rollout of flat RoPE positions, a speculative target that is not one patch per
token, --ddp with --dp, ...)."""
import torch

from cli.checks.sizes import built_shapes, check_memory
from cli.flags import FLAG, FLAGS, Combination
from models import families, family_trait
from speculative.engine import check_one_call
from utils.failures import UsageError


def is_set(args, name):
    """The flag differs from its default (a flag that defaults to another flag: from that flag's value)."""
    flag = FLAG[name]
    default = getattr(args, flag.defaults_to) if flag.defaults_to else flag.default
    return getattr(args, name) != default


def as_given(args, name):
    value = getattr(args, name)
    return f"--{name}" if isinstance(value, bool) else f"--{name} {value}"


def builds(args, key):
    """The run builds a model of family key: the forecaster, the speculative draft or the teacher."""
    return key in (args.model, args.use_speculative and args.spec_draft_model,
                   args.distill and args.distill_target_model)


def family_flag_rules():
    """(flag, combination): a flag that families declare as their own (own_flags) does something only when one of
    them is built."""
    owners = {}
    for key in families():
        for name in family_trait(key, "own_flags") or ():
            owners.setdefault(name, []).append(key)
    return [(name, Combination(lambda args, keys=tuple(keys): any(builds(args, key) for key in keys),
                               " or ".join(f"--model/--spec_draft_model/--distill_target_model {key}" for key in keys)))
            for name, keys in owners.items()]


def check_combinations(args, used=()):
    """used: flags a script reads itself, whatever the models built (step_costs.py's --n_vars)."""
    check_nothing_done(args, used)
    check_distillation(args)
    check_speculative(args)
    check_cached_rollout(args)
    check_model_combinations(args)
    if args.ddp and args.dp:
        raise UsageError("--ddp and --dp exclude each other; pick one")
    if args.dp and not torch.cuda.is_available():
        raise UsageError(f"--dp needs CUDA devices (--devices {args.devices}); none is available")


def check_nothing_done(args, used):
    rules = [(flag.name, flag.needs) for flag in FLAGS if flag.needs] + family_flag_rules()
    for name, needs in rules:
        if is_set(args, name) and not needs.holds(args) and name not in used:
            raise UsageError(f"{as_given(args, name)} does nothing without {needs.what}")


def check_distillation(args):
    if args.distill and not args.distill_target_ckpt:
        raise UsageError("--distill needs --distill_target_ckpt (the teacher's checkpoint)")
    if args.distill_rollout_patches:
        check_rollout_distillation(args)


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


def check_speculative(args):
    if not args.use_speculative:
        return
    if args.spec_mse_budget is not None:
        for name in ("spec_sigma", "spec_adaptive"):
            if is_set(args, name):
                raise UsageError(f"{as_given(args, name)} does nothing with --spec_mse_budget: the calibration chooses "
                                 f"sigma and K (--spec_calib_sigmas, K 1..--spec_k and adaptive)")
    if not args.spec_draft_ckpt:
        raise UsageError("--use_speculative needs --spec_draft_ckpt (the draft's checkpoint)")
    if args.input_token_len != args.output_token_len:
        raise UsageError(f"speculative decoding needs --input_token_len == --output_token_len "
                         f"(got {args.input_token_len} and {args.output_token_len})")
    if args.target_sample and not args.spec_compare_baseline:
        raise UsageError("--target_sample with --use_speculative changes only the target-only baseline: "
                         "add --spec_compare_baseline")


def check_cached_rollout(args):
    if args.rollout == "cached" and args.covariate:
        raise UsageError("--rollout cached cannot reproduce --covariate attention (target tokens attend to later "
                         "covariate tokens); use --rollout sliding")
    if args.rollout == "cached" and args.input_token_len != args.output_token_len:
        raise UsageError(f"--rollout cached needs --input_token_len == --output_token_len "
                         f"(got {args.input_token_len} and {args.output_token_len})")


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
        check_one_call_training(args)
    model = built_shapes(args.model, args)
    check_memory(args, model)
    if args.use_speculative:
        try:
            check_one_call(model, built_shapes(args.spec_draft_model, args), args.spec_k)
        except ValueError as error:
            raise UsageError(f"--model {args.model} with --spec_draft_model {args.spec_draft_model}: {error}") from None


def check_one_call_training(args):
    if not args.nonautoregressive:
        raise UsageError(f"--model {args.model} trains on the points after each window: add --nonautoregressive")
    if args.output_token_len != args.ttm_patches * args.input_token_len:
        raise UsageError(f"--model {args.model} trains with --output_token_len = --ttm_patches * "
                         f"--input_token_len = {args.ttm_patches * args.input_token_len} (got {args.output_token_len})")

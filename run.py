"""Single entry point: parse and validate flags, seed, then dispatch to an Exp class."""
import argparse
import random
import sys

import numpy as np
import torch

def build_parser():
    p = argparse.ArgumentParser(description="Timer-XL forecasting, draft pretraining, distillation and speculative decoding")
    a = p.add_argument
    # basic config
    a("--task_name", type=str, required=True, default="forecast", help="forecast or pretrain")
    a("--is_training", type=int, required=True, default=1, help="1 = train + test, 0 = test a checkpoint")
    a("--model_id", type=str, required=True, default="test")
    a("--model", type=str, required=True, default="timer_xl", help="timer_xl, timer_xl_draft, timer")
    a("--seed", type=int, default=2021)
    # data
    a("--data", type=str, required=True, default="ETTh1", help="dataset class key")
    a("--root_path", type=str, default="./dataset/ETT-small/")
    a("--data_path", type=str, default="ETTh1.csv")
    a("--checkpoints", type=str, default="./checkpoints/")
    # lengths
    a("--seq_len", type=int, default=672)
    a("--input_token_len", type=int, default=576)
    a("--output_token_len", type=int, default=96)
    a("--test_seq_len", type=int, default=672)
    a("--test_pred_len", type=int, default=96)
    # model
    a("--dropout", type=float, default=0.1)
    a("--e_layers", type=int, default=1)
    a("--d_model", type=int, default=512)
    a("--n_heads", type=int, default=8)
    a("--d_ff", type=int, default=2048)
    a("--activation", type=str, default="relu")
    a("--covariate", action="store_true")
    a("--use_norm", action="store_true")
    a("--nonautoregressive", action="store_true")
    a("--test_dir", type=str, default="./test")
    a("--test_file_name", type=str, default="checkpoint.pth")
    a("--visualize", action="store_true", help="PNG plots of truth vs forecast during test")
    a("--flash_attention", action="store_true", help="SDPA attention path (same numbers)")
    # adaptation
    a("--adaptation", action="store_true")
    a("--pretrain_model_path", type=str, default="pretrain_model.pth")
    a("--subset_rand_ratio", type=float, default=1)
    # optimisation
    a("--num_workers", type=int, default=10)
    a("--itr", type=int, default=1)
    a("--train_epochs", type=int, default=10)
    a("--batch_size", type=int, default=32)
    a("--patience", type=int, default=3)
    a("--learning_rate", type=float, default=0.0001)
    a("--des", type=str, default="test")
    a("--lradj", type=str, default="type1")
    a("--cosine", action="store_true")
    a("--tmax", type=int, default=10)
    a("--weight_decay", type=float, default=0)
    a("--valid_last", action="store_true")
    a("--last_token", action="store_true")
    # devices
    a("--gpu", type=int, default=0)
    a("--ddp", action="store_true")
    a("--dp", action="store_true")
    a("--devices", type=str, default="0,1,2,3")
    # draft model
    a("--draft_scale_d_model", type=float, default=0.25)
    a("--draft_scale_n_heads", type=float, default=0.25)
    a("--draft_scale_d_ff", type=float, default=0.25)
    a("--draft_scale_e_layers", type=float, default=0.25)
    a("--draft_stochastic", action="store_true", help="draft has mean and log-variance heads")
    # distillation
    a("--distill", action="store_true")
    a("--distill_target_model", type=str, default="timer_xl")
    a("--distill_target_ckpt", type=str, default="")
    a("--distill_target_d_model", type=int, default=None, help="default: --d_model")
    a("--distill_target_n_heads", type=int, default=None, help="default: --n_heads")
    a("--distill_target_d_ff", type=int, default=None, help="default: --d_ff")
    a("--distill_target_e_layers", type=int, default=None, help="default: --e_layers")
    a("--draft_nll_var_reg", type=float, default=0.01)
    a("--draft_teacher_noise", type=float, default=0.05)
    # speculative decoding
    a("--use_speculative", action="store_true")
    a("--spec_draft_model", type=str, default="timer_xl_draft")
    a("--spec_draft_ckpt", type=str, default="")
    a("--spec_k", type=int, default=3)
    a("--spec_sigma", type=float, default=0.7)
    a("--spec_accept_bias", type=float, default=1.0)
    a("--spec_accept_mode", type=str, default="tolerance", help="tolerance or lossless")
    a("--spec_residual_max_tries", type=int, default=100)
    a("--spec_adaptive", action="store_true", help="adapt K between rounds from the running acceptance")
    a("--rollout", type=str, default="sliding", help="sliding or cached")
    a("--target_sample", action="store_true", help="target-only baseline emits mu_p + sigma*eps")
    a("--spec_compare_baseline", action="store_true")
    a("--spec_debug_accept", action="store_true")
    a("--spec_debug_out", type=str, default="spec_debug.csv")
    a("--spec_debug_max_batches", type=int, default=3)
    a("--trace_inference_breakdown", action="store_true")
    a("--test_max_batches", type=int, default=None, help="stop the test after this many batches")
    return p


def fail(message):
    raise SystemExit(f"error: {message}")


def validate(args):
    """Check every flag combination that cannot work, before any data or model is touched."""
    from data_provider.data_factory import DATA_DICT
    from models import MODEL_MODULES

    if args.task_name not in ("forecast", "pretrain"):
        fail(f"--task_name '{args.task_name}' is not one of: forecast, pretrain")
    for flag, value in (("--model", args.model), ("--distill_target_model", args.distill_target_model),
                        ("--spec_draft_model", args.spec_draft_model)):
        if value not in MODEL_MODULES:
            fail(f"unknown {flag} '{value}'; valid: {', '.join(MODEL_MODULES)}")
    if args.data not in DATA_DICT:
        fail(f"unknown --data '{args.data}'; valid: {', '.join(DATA_DICT)}")
    if not 0 < args.subset_rand_ratio <= 1:
        fail(f"--subset_rand_ratio {args.subset_rand_ratio} must lie in (0, 1]")
    for flag in ("seq_len", "test_seq_len"):
        if getattr(args, flag) % args.input_token_len:
            fail(f"--{flag} {getattr(args, flag)} is not a multiple of --input_token_len {args.input_token_len}")
    if args.distill and not args.distill_target_ckpt:
        fail("--distill needs --distill_target_ckpt")
    if args.draft_stochastic and args.model != "timer_xl_draft" and not args.use_speculative:
        fail(f"--draft_stochastic needs --model timer_xl_draft (got --model {args.model})")
    if args.use_speculative:
        validate_speculative(args)


def validate_speculative(args):
    if args.input_token_len != args.output_token_len:
        fail(f"speculative decoding needs --input_token_len == --output_token_len "
             f"(got {args.input_token_len} and {args.output_token_len})")
    if args.spec_k < 1:
        fail(f"--spec_k {args.spec_k} must be >= 1")
    if not args.spec_sigma > 0:
        fail(f"--spec_sigma {args.spec_sigma} must be > 0")
    if not args.spec_accept_bias >= 1:
        fail(f"--spec_accept_bias {args.spec_accept_bias} must be >= 1")
    if args.spec_accept_mode not in ("tolerance", "lossless"):
        fail(f"--spec_accept_mode '{args.spec_accept_mode}' is not one of: tolerance, lossless")
    if args.rollout not in ("sliding", "cached"):
        fail(f"--rollout '{args.rollout}' is not one of: sliding, cached")
    if args.rollout == "cached":
        fail("--rollout cached is not implemented yet; use --rollout sliding")
    if args.spec_residual_max_tries < 1:
        fail(f"--spec_residual_max_tries {args.spec_residual_max_tries} must be >= 1")
    if not args.spec_draft_ckpt:
        fail("--use_speculative needs --spec_draft_ckpt")


def fill_defaults(args):
    for name in ("d_model", "n_heads", "d_ff", "e_layers"):
        if getattr(args, f"distill_target_{name}") is None:
            setattr(args, f"distill_target_{name}", getattr(args, name))
    return args


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parse_args(argv=None):
    args = fill_defaults(build_parser().parse_args(argv))
    validate(args)
    return args


def experiment_class(args):
    """Speculative test, distillation, or the forecasting loop (also --task_name pretrain, which only
    changes the setting string)."""
    if args.use_speculative:
        from exp.exp_speculative import ExpSpeculative
        return ExpSpeculative
    if args.distill:
        from exp.exp_distill import ExpDistill
        return ExpDistill
    from exp.exp_forecast import ExpForecast
    return ExpForecast


def main(argv=None):
    args = parse_args(argv)
    seed_everything(args.seed)
    exp = experiment_class(args)(args)
    exp.run()


if __name__ == "__main__":
    main(sys.argv[1:])

"""How close is a draft to its target? Rollout MSE against the truth and against the target, and the
calibration of a stochastic draft, on the test split.

    python scripts/analysis/draft_vs_target.py <run.py flags of the target: --data ... --d_model ...> \
        --target_ckpt checkpoints/<target>/checkpoint.pth --draft_ckpt checkpoints/<draft>/checkpoint.pth \
        [--model timer_xl] [--spec_draft_model timer_xl_draft] [--draft_stochastic] [--horizons 96 720] [--max_batches 20]

The target is --model, the draft --spec_draft_model, both built from the flags (as in a speculative run).
For every horizon H: the draft's and the target's sliding rollouts (the standard test) give
mse(draft, truth), mse(target, truth) and mse(draft, target). Coverage (stochastic drafts only): the
fraction of the target's predictions inside the draft's central 95% interval mean +- 1.96 sigma,
teacher-forced over all tokens of the test windows; for a one-call draft (TTM) the target's rollout of
the K patches the draft forecasts in one call.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from cli.checks.scripts import check_not_given, validate_script  # noqa: E402
from cli.checks.values import check_numbers  # noqa: E402
from cli.parser import RUN_PY_FLAGS, OneLineErrorParser, parse_script_flags  # noqa: E402
from data_provider.data_factory import get_dataset, get_loader  # noqa: E402
from models import model_from_flags  # noqa: E402
from models.output import is_one_call  # noqa: E402
from speculative import TargetOnlyDecoder  # noqa: E402
from utils.checkpoint import load_checkpoint  # noqa: E402
from utils.failures import exit_cleanly, exit_on_usage_error  # noqa: E402

Z_95 = 1.959964


def parse(argv=None):
    extra = OneLineErrorParser(description=__doc__.split("\n")[0], epilog=RUN_PY_FLAGS)
    extra.add_argument("--target_ckpt", required=True)
    extra.add_argument("--draft_ckpt", required=True)
    extra.add_argument("--horizons", type=int, nargs="+", default=[96, 720])
    extra.add_argument("--max_batches", type=int, default=None)
    own, rest = extra.parse_known_args(argv)
    args = parse_script_flags(rest)
    with exit_on_usage_error():
        check_not_given(args, (("rollout", "the rollouts compared are sliding"),
                               ("test_pred_len", "--horizons sets it"), ("test_max_batches", "--max_batches sets it")))
        check_numbers(dict(horizons=own.horizons, max_batches=own.max_batches), lambda v: v >= 1, ">= 1")
        args.test_pred_len = max(own.horizons)
        # no proposals here: K 1 asks only that the target predicts one patch per token
        validate_script(args, "sliding", 1, (own.target_ckpt, own.draft_ckpt),
                        renamed={"test_pred_len": "the longest --horizons"})
    return own, args


def test_batches(args, horizon, max_batches):
    args.test_pred_len = horizon
    loader = get_loader(args, get_dataset(args, "test"), "test")
    for i, (x, y, _, _) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            return
        yield x.float(), y.float()


@torch.no_grad()
def rollout_errors(target, draft, args, horizon, max_batches):
    sums, count = dict(draft_vs_truth=0.0, target_vs_truth=0.0, draft_vs_target=0.0), 0
    for x, y in test_batches(args, horizon, max_batches):
        truth = y[:, -horizon:]
        ids = range(len(x))
        target_pred = TargetOnlyDecoder(target).generate(x, horizon, ids)
        draft_pred = TargetOnlyDecoder(draft).generate(x, horizon, ids)
        sums["draft_vs_truth"] += (draft_pred - truth).square().sum().item()
        sums["target_vs_truth"] += (target_pred - truth).square().sum().item()
        sums["draft_vs_target"] += (draft_pred - target_pred).square().sum().item()
        count += truth.numel()
    return {name: total / count for name, total in sums.items()}


@torch.no_grad()
def coverage(target, draft, args, max_batches):
    """Fraction of teacher-forced target predictions inside the draft's 95% interval, and the mean
    draft std next to the RMS draft-target gap (a calibrated draft has them about equal)."""
    inside, count, var_sum, gap_sum = 0, 0, 0.0, 0.0
    for x, _ in test_batches(args, args.output_token_len, max_batches):
        mean, logvar = draft(x)[:2]
        if is_one_call(draft):
            target_out = TargetOnlyDecoder(target).generate(x, draft.output_len, range(len(x)))
        else:
            target_out = target(x).mean
        std = torch.exp(0.5 * logvar)
        inside += ((target_out - mean).abs() <= Z_95 * std).sum().item()
        var_sum += std.square().sum().item()
        gap_sum += (target_out - mean).square().sum().item()
        count += mean.numel()
    return inside / count, np.sqrt(var_sum / count), np.sqrt(gap_sum / count)


def main(argv=None):
    own, args = parse(argv)
    target = load_checkpoint(model_from_flags(args.model, args), own.target_ckpt).eval()
    draft = load_checkpoint(model_from_flags(args.spec_draft_model, args), own.draft_ckpt).eval()
    for horizon in own.horizons:
        errors = rollout_errors(target, draft, args, horizon, own.max_batches)
        print(f"H {horizon}: " + ", ".join(f"mse_{name} {value:.4f}" for name, value in errors.items()))
    if args.draft_stochastic:
        covered, mean_std, rms_gap = coverage(target, draft, args, own.max_batches)
        print(f"coverage of the target by the draft's 95% interval: {100 * covered:.1f}% "
              f"(mean draft std {mean_std:.4f}, RMS draft-target gap {rms_gap:.4f})")


if __name__ == "__main__":
    with exit_cleanly("nothing was written"):
        main()

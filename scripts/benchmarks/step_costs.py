"""Step costs of a target/draft pair before training anything: the speed model's c and v(K), per rollout
and batch size, of models built from the flags with random weights.

    python scripts/benchmarks/step_costs.py <run.py flags of the target and the draft: --d_model ... \
        --spec_draft_model ttm --ttm_patches 4 ...> [--batch_sizes 1 32] [--ks 1 2 3 4] [--n_vars 7] [--device cuda]

A call's cost depends on the shapes, not on the weights, so c (one draft call: a step, or a one-call
draft's whole block, over one target step) and v(K) (the verify call with K proposals over one target
step) can be compared across draft families and target sizes without checkpoints. Acceptance does
depend on the weights: for speedups use speedup.py with trained checkpoints. The windows are random
[B, --seq_len, --n_vars] series; each cost is the median over --repeats repeats (after an untimed
one), each repeat timing every call once, synchronised, at the start of a horizon-720 forecast
(speculative/speed_model.py), shown with its range over the repeats. `prefill` is the cost of
building the speculative rollout of the batch (`cached`: one prefill per model; `sliding`: none).
`S(a=1)` is the speed model's speedup of one round at full acceptance, (K+1) / (K c + v(K)) (one-call
draft: (K+1) / (c + v(K))): the most this pair can gain at that K, before prefills (nan when the costs are
impossible, as every prediction of speculative/speed_model.py).
"""
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from cli.checks.scripts import check_device, check_not_given, validate_script  # noqa: E402
from cli.checks.values import check_numbers  # noqa: E402
from cli.parser import RUN_PY_FLAGS, OneLineErrorParser, parse_script_flags  # noqa: E402
from models import model_from_flags, n_parameters  # noqa: E402
from speculative import ROLLOUTS, RolloutOptions, SpecConfig, SpeculativeDecoder  # noqa: E402
from utils.failures import exit_cleanly, exit_on_usage_error  # noqa: E402

HORIZON = 720


def parse(argv=None):
    own = OneLineErrorParser(description=__doc__.split("\n")[0], epilog=RUN_PY_FLAGS)
    own.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    own.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4])
    own.add_argument("--repeats", type=int, default=5)
    own.add_argument("--device", default="cpu")
    bench, rest = own.parse_known_args(argv)
    args = parse_script_flags(rest)
    with exit_on_usage_error():
        check_not_given(args, (("rollout", "both rollouts are measured"), ("spec_k", "--ks sets K"),
                               ("test_pred_len", f"the costs are measured for horizon {HORIZON}"),
                               ("batch_size", "--batch_sizes sets it")))
        check_numbers(dict(batch_sizes=bench.batch_sizes, ks=bench.ks, repeats=bench.repeats, n_vars=args.n_vars),
                      lambda v: v >= 1, ">= 1")
        check_device(bench.device)
        args.test_pred_len = HORIZON  # the costs are measured at the start of a forecast of this horizon
        validate_script(args, "cached", max(bench.ks), used=("n_vars",),  # n_vars: the windows' variables
                        renamed={"spec_k": "the largest --ks"})
    bench.ks = sorted({min(k, args.spec_k) for k in bench.ks})  # K beyond the horizon's patches is clipped
    return bench, args


@torch.no_grad()
def cost_rows(target, draft, args, bench, device):
    config = SpecConfig(k=max(bench.ks), patch_len=args.input_token_len)
    for batch_size in bench.batch_sizes:
        x = torch.randn(batch_size, args.seq_len, args.n_vars, generator=torch.Generator().manual_seed(args.seed))
        for rollout in ROLLOUTS:
            decoder = SpeculativeDecoder(target, draft, config, RolloutOptions(rollout, cache_stats=args.cache_stats))
            decoder.sample_costs(x.to(device), HORIZON, bench.repeats)
            costs = decoder.costs
            step_ms = 1000 * statistics.median(repeat.verify_s[0] for repeat in costs.repeats)
            cells = [f"{step_ms:.2f}", with_range(costs, "c", 3)] + [with_range(costs, f"v({k})", 2) for k in bench.ks]
            cells += [f"{costs.median['prefill']:.2f}"] + [f"{costs.speedup(1.0, k):.2f}" for k in bench.ks]
            yield [rollout, str(batch_size), *cells]


def with_range(costs, name, digits):
    low, high = costs.range[name]
    return f"{costs.median[name]:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def main(argv=None):
    bench, args = parse(argv)
    device = torch.device(bench.device)
    torch.manual_seed(args.seed)
    target = model_from_flags(args.model, args).to(device).eval()
    draft = model_from_flags(args.spec_draft_model, args).to(device).eval()
    print(f"target {args.model}: {n_parameters(target):,} parameters; draft {args.spec_draft_model}: "
          f"{n_parameters(draft):,} parameters; {args.n_vars} variables, context {args.seq_len}, {bench.device}")
    head = ["rollout", "batch", "target step ms", "c (range)"] + [f"v({k}) (range)" for k in bench.ks] + ["prefill"]
    head += [f"S(a=1, K={k})" for k in bench.ks]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in cost_rows(target, draft, args, bench, device):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    with exit_cleanly("the rows printed above are complete"):
        main()

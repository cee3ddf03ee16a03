"""Draft-to-target forward-time ratio on the same input, baseline and candidate alternating.

    python scripts/benchmarks/forward_time_ratio.py --d_model 1024 --n_heads 8 --d_ff 2048 --e_layers 1 \
        --seq_len 672 --n_vars 7 --batch_sizes 1 32 [--draft_stochastic] [--repeats 20]

The target is timer_xl with the given sizes; the draft is timer_xl_draft scaled by --draft_scale_*.
Weights are random: forward time does not depend on their values."""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from models import build_model  # noqa: E402
from run import build_parser, fill_defaults  # noqa: E402


def timed_forward(model, x, sync):
    start = time.perf_counter()
    model(x)
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    extra.add_argument("--repeats", type=int, default=20)
    extra.add_argument("--n_vars", type=int, default=7, help="variables of the random input")
    bench, rest = extra.parse_known_args()
    required = ["--task_name", "forecast", "--is_training", "0", "--model_id", "bench", "--model", "timer_xl",
                "--data", "MultivariateDatasetBenchmark", "--input_token_len", "96", "--use_norm"]
    args = fill_defaults(build_parser().parse_args(required + rest))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    models = {name: build_model(name, args).to(device).eval() for name in ("timer_xl", "timer_xl_draft")}
    for name, model in models.items():
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters")
    with torch.no_grad():
        for batch in bench.batch_sizes:
            x = torch.randn(batch, args.seq_len, bench.n_vars, device=device)
            times = {name: [] for name in models}
            for model in models.values():
                model(x)  # warm-up
            for _ in range(bench.repeats):
                for name, model in models.items():
                    times[name].append(timed_forward(model, x, device.type == "cuda"))
            target, draft = (statistics.median(times[n]) for n in ("timer_xl", "timer_xl_draft"))
            print(f"batch {batch}: target {target * 1e3:.2f} ms, draft {draft * 1e3:.2f} ms, "
                  f"draft/target ratio c = {draft / target:.3f}")


if __name__ == "__main__":
    main()

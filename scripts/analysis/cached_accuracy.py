"""Does the fast rollout keep the forecast? Target-only MSE of `sliding`, `cached` frozen and `cached`
trailing on the same test windows, in total and per patch.

    python scripts/analysis/cached_accuracy.py <run.py flags of the target: --data ... --d_model ...> \
        --target_ckpt checkpoints/<target>/checkpoint.pth [--horizon 720] [--n_windows 256] \
        [--cache_max_tokens N] [--out_dir accuracy_results]

The windows are --n_windows test windows spread evenly over the test split (first to last), decoded
--batch_size at a time. For each rollout: the MSE against the truth, per patch and over the horizon,
and the MSE against `sliding`'s forecast (the target's own, as OpenLTM decodes it). Writes
OUT_DIR/cached_accuracy.csv (one row per rollout and patch, patch 0 = the whole horizon) and
OUT_DIR/cached_accuracy.png (per-patch MSE against the truth), and prints a markdown table.
"""
import math
import os
import sys

import matplotlib
import torch
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from cli.checks.outputs import check_output_folder  # noqa: E402
from cli.checks.scripts import check_not_given, validate_script  # noqa: E402
from cli.checks.values import check_numbers  # noqa: E402
from cli.parser import RUN_PY_FLAGS, OneLineErrorParser, parse_script_flags  # noqa: E402
from data_provider.data_factory import spread_loader  # noqa: E402
from models import model_from_flags  # noqa: E402
from speculative import RolloutOptions, TargetOnlyDecoder  # noqa: E402
from utils.checkpoint import load_checkpoint  # noqa: E402
from utils.failures import exit_cleanly, exit_on_usage_error  # noqa: E402
from utils.records import write_table  # noqa: E402

COLUMNS = ["rollout", "patch", "mse", "mse_vs_sliding", "relative_to_sliding_pct"]


def parse(argv=None):
    own = OneLineErrorParser(description=__doc__.split("\n")[0], epilog=RUN_PY_FLAGS)
    own.add_argument("--target_ckpt", required=True)
    own.add_argument("--horizon", type=int, default=720)
    own.add_argument("--n_windows", type=int, default=256, help="test windows, spread evenly over the test split")
    own.add_argument("--out_dir", default="accuracy_results")
    bench, rest = own.parse_known_args(argv)
    args = parse_script_flags(rest)
    with exit_on_usage_error():
        check_not_given(args, (("rollout", "the three rollouts are compared"), ("cache_stats", "both are compared"),
                               ("test_pred_len", "--horizon sets it"), ("test_max_batches", "--n_windows sets it")))
        check_numbers(dict(horizon=bench.horizon, n_windows=bench.n_windows), lambda v: v >= 1, ">= 1")
        check_output_folder("--out_dir", bench.out_dir)
        args.test_pred_len = bench.horizon
        validate_script(args, "cached", 1, (bench.target_ckpt, None), renamed={"test_pred_len": "--horizon"})
    return bench, args


def rollouts(args):
    return {"sliding": RolloutOptions(),
            "cached_frozen": RolloutOptions("cached", args.cache_max_tokens, "frozen"),
            "cached_trailing": RolloutOptions("cached", args.cache_max_tokens, "trailing")}


@torch.no_grad()
def forecasts(target, args, n_windows, horizon):
    """rollout name -> [W, horizon, C] forecasts, and the truth [W, horizon, C]."""
    decoders = {name: TargetOnlyDecoder(target, options) for name, options in rollouts(args).items()}
    preds, truth, first = {name: [] for name in decoders}, [], 0
    for x, y, _, _ in tqdm(spread_loader(args, "test", n_windows), desc="windows"):
        ids = list(range(first, first + len(x)))
        for name, decoder in decoders.items():
            preds[name].append(decoder.generate(x.float(), horizon, ids))
        truth.append(y.float()[:, -horizon:])
        first += len(x)
    return {name: torch.cat(p) for name, p in preds.items()}, torch.cat(truth)


def mse(a, b):
    return (a.double() - b.double()).square().mean().item()


def accuracy_rows(preds, truth, patch_len):
    """One row per rollout and patch (patch 0: the whole horizon)."""
    n_patches = math.ceil(truth.shape[1] / patch_len)
    rows = []
    for name, pred in preds.items():
        for patch in range(n_patches + 1):
            span = slice(None) if patch == 0 else slice((patch - 1) * patch_len, patch * patch_len)
            sliding_mse = mse(preds["sliding"][:, span], truth[:, span])
            row_mse = mse(pred[:, span], truth[:, span])
            rows.append(dict(rollout=name, patch=patch, mse=row_mse,
                             mse_vs_sliding=mse(pred[:, span], preds["sliding"][:, span]),
                             relative_to_sliding_pct=100 * (row_mse / sliding_mse - 1)))
    return rows


def markdown(rows):
    n_patches = max(r["patch"] for r in rows)
    head = ["rollout", "MSE (H)", "vs sliding %", "MSE to sliding's forecast"] + [f"p{p}" for p in range(1, n_patches + 1)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in dict.fromkeys(r["rollout"] for r in rows):
        mine = {r["patch"]: r for r in rows if r["rollout"] == name}
        cells = [name, f"{mine[0]['mse']:.4f}", f"{mine[0]['relative_to_sliding_pct']:+.1f}",
                 f"{mine[0]['mse_vs_sliding']:.4f}"] + [f"{mine[p]['mse']:.4f}" for p in range(1, n_patches + 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["rollout"] for r in rows):
        points = [(r["patch"], r["mse"]) for r in rows if r["rollout"] == name and r["patch"] > 0]
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set(xlabel="patch of the horizon", ylabel="MSE against the truth", title="target-only rollouts")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    bench, args = parse(argv)
    torch.manual_seed(args.seed)
    target = load_checkpoint(model_from_flags(args.model, args), bench.target_ckpt).eval()
    preds, truth = forecasts(target, args, bench.n_windows, bench.horizon)
    rows = accuracy_rows(preds, truth, target.output_len)
    os.makedirs(bench.out_dir, exist_ok=True)
    write_table(os.path.join(bench.out_dir, "cached_accuracy.csv"), COLUMNS, rows)
    plot(rows, os.path.join(bench.out_dir, "cached_accuracy.png"))
    print(f"{len(truth)} test windows, horizon {bench.horizon}")
    print(markdown(rows))
    print(f"wrote {bench.out_dir}/cached_accuracy.csv and {bench.out_dir}/cached_accuracy.png")
    return rows


if __name__ == "__main__":
    with exit_cleanly("the table and files are written at the end: nothing was written"):
        main()

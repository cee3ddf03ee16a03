"""Speedup benchmark: target-only and speculative decoding, `sliding` and `cached`, in ONE process.

    python scripts/benchmarks/speedup.py --target_ckpt T.pth [--draft_ckpt D.pth] <run.py flags of the target> \
        [--draft_stochastic] [--batch_sizes 1 8 32] [--horizons 720 1440] [--ks 1 2 3 4] [--sigmas 0.3 0.7] \
        [--n_batches 5] [--quick] [--device cuda] [--out_dir benchmark_results] [--mse_budgets 1 5]

For every (batch size, horizon) the candidates are: target `sliding`, target `cached`, and speculative
decoding in both rollouts with fixed K (--ks) and adaptive K (up to max --ks), for every tolerance
(or, with --spec_accept_mode lossless, lossless) sigma in --sigmas (default: --spec_sigma). With
--mse_budgets B1 B2 ... the speculative candidates are instead spec_cached_budget<B>: `cached` with the
sigma and K (1..max --ks, or adaptive) that a calibration on --spec_calib_windows validation windows chooses
for an MSE increase of at most B percent (speculative/calibration.py; the grid is measured once per grid
point, untimed, and its time printed).
`cached` candidates use --cache_stats (default trailing) and attend to at most --cache_max_tokens time
steps when it is given; target `cached` with the other statistics (`target_cached_frozen` by default)
is timed too, as the cost of the choice. Without --draft_ckpt only the target-only candidates run: the
gain of caching alone. They decode the same
test windows (the first --n_batches batches of the test split of the dataset the flags name). Before
timing starts, untimed, the step costs are measured on the first batch (once per rollout, for the
largest K, shared by its decoders) and each candidate runs once on it (warm-up). Then come timed
passes, as many as the smallest multiple of the number of candidates that covers every batch: pass r
decodes batch r mod --n_batches with every candidate, in the order rotated by r, so each candidate
takes every position equally often; after each pass the step costs are measured once more, untimed.
Times are per pass, synchronised on CUDA; the table reports medians. Speedups are ratios of the
median per-pass times of the same grid point; `predicted_speedup` is the speed model's speedup over
target-only decoding in the same rollout, prefills included (speculative/speed_model.py), to compare
with `speedup_same_rollout`; c and v (of the row's K; for adaptive, the K most of its proposing rounds
used) come with their range over the repeats, nan predicted when `cost_check` finds them impossible.

Writes OUT_DIR/speedup.csv (one row per candidate and grid point), OUT_DIR/speedup.png (speedup over
target-only `cached` against K, one panel per batch size, one line per rollout and horizon) and
prints a markdown table. --quick: batch sizes 1 and 8, horizon 720, K 1 and 3, 2 timed batches.
"""
import dataclasses
import math
import os
import statistics
import sys

import matplotlib
import torch
from tqdm import tqdm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from cli.checks.outputs import check_output_folder  # noqa: E402
from cli.checks.scripts import check_device, check_not_given, validate_script  # noqa: E402
from cli.checks.values import check_numbers  # noqa: E402
from cli.parser import RUN_PY_FLAGS, OneLineErrorParser, parse_script_flags  # noqa: E402
from data_provider.data_factory import get_dataset, get_loader  # noqa: E402
from models import model_from_flags, n_parameters  # noqa: E402
from speculative import ROLLOUTS, RolloutOptions, SpecConfig, SpeculativeDecoder, TargetOnlyDecoder  # noqa: E402
from speculative.cached import CACHE_STATS  # noqa: E402
from speculative.calibration import Calibration, calibration_batches, choose, measure_settings  # noqa: E402
from speculative.engine import WARM_UP_REPEATS  # noqa: E402
from speculative.speed_model import reported_k, speed_report  # noqa: E402
from utils.checkpoint import load_checkpoint  # noqa: E402
from utils.failures import UsageError, exit_cleanly, exit_on_usage_error  # noqa: E402
from utils.records import write_table  # noqa: E402
from utils.timing import timed  # noqa: E402

COLUMNS = ["batch_size", "horizon", "candidate", "rollout", "sigma", "k", "per_batch_s", "speedup_vs_sliding",
           "speedup_vs_cached", "speedup_same_rollout", "acceptance_pct", "patches_per_target_call",
           "target_calls_per_forecast", "c", "c_min", "c_max", "v", "v_min", "v_max", "prefill", "target_prefill",
           "cost_repeats", "cost_check", "adaptive_fallback_rounds", "predicted_speedup", "mse", "mse_vs_target",
           "mse_vs_sliding", "mse_budget"]
QUICK = dict(batch_sizes=[1, 8], horizons=[720], ks=[1, 3], n_batches=2)
# run.py flags that the grid sets: given to this script, they would do nothing.
REPLACED = (("rollout", "both rollouts are timed"), ("spec_k", "--ks sets K"),
            ("spec_adaptive", "adaptive K (up to max --ks) is always a candidate"),
            ("spec_compare_baseline", "target-only decoding is always a candidate"),
            ("batch_size", "--batch_sizes sets it"), ("test_pred_len", "--horizons sets it"),
            ("test_max_batches", "--n_batches sets it"))


def bench_parser():
    """The benchmark's own flags; every other flag is run.py's."""
    own = OneLineErrorParser(description=__doc__.split("\n")[0], epilog=RUN_PY_FLAGS)
    own.add_argument("--target_ckpt", required=True)
    own.add_argument("--draft_ckpt", default=None, help="without it: target-only candidates only")
    own.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8, 32])
    own.add_argument("--horizons", type=int, nargs="+", default=[720, 1440])
    own.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4])
    own.add_argument("--sigmas", type=float, nargs="+", default=None, help="default: --spec_sigma")
    own.add_argument("--mse_budgets", type=float, nargs="+", default=None,
                     help="instead of fixed sigmas: speculative `cached` with sigma and K calibrated on validation "
                          "windows to stay within each MSE budget (percent; see --spec_mse_budget)")
    own.add_argument("--n_batches", type=int, default=5, help="timed batches per grid point")
    own.add_argument("--quick", action="store_true", help="a small grid that finishes in minutes on a CPU")
    own.add_argument("--device", default="cpu")
    own.add_argument("--out_dir", default="benchmark_results")
    return own


def parse(argv=None):
    bench, rest = bench_parser().parse_known_args(argv)
    if bench.quick:
        vars(bench).update(QUICK)
    args = parse_script_flags(rest)
    with exit_on_usage_error():
        check_not_given(args, REPLACED + ((("spec_sigma", "--sigmas sets sigma"),) if bench.sigmas else ()))
        check_numbers(dict(batch_sizes=bench.batch_sizes, horizons=bench.horizons, ks=bench.ks,
                           n_batches=bench.n_batches), lambda v: v >= 1, ">= 1")
        check_numbers(dict(sigmas=bench.sigmas), lambda v: v > 0, "> 0")
        check_numbers(dict(mse_budgets=bench.mse_budgets), lambda v: v >= 0, ">= 0")
        if bench.mse_budgets and (bench.sigmas or bench.draft_ckpt is None):
            raise UsageError("--mse_budgets calibrates sigma itself and needs --draft_ckpt: leave out --sigmas")
        args.spec_mse_budget = min(bench.mse_budgets) if bench.mse_budgets else None  # the calibration flags
        check_device(bench.device)
        check_output_folder("--out_dir", bench.out_dir)
        args.test_pred_len = max(bench.horizons)  # the longest forecast must fit in the test split
        if bench.draft_ckpt is None and bench.sigmas:
            raise UsageError("--sigmas does nothing without --draft_ckpt (only target-only candidates run)")
        validate_script(args, "cached", max(bench.ks), (bench.target_ckpt, bench.draft_ckpt),
                        renamed={"spec_k": "the largest --ks", "test_pred_len": "the longest --horizons",
                                 "use_speculative": "--draft_ckpt"})
    bench.ks = sorted({min(k, args.spec_k) for k in bench.ks})  # K beyond the longest horizon's patches is clipped
    bench.sigmas = bench.sigmas or [args.spec_sigma]
    return bench, args


def load_models(bench, args, device):
    target = load_checkpoint(model_from_flags(args.model, args), bench.target_ckpt).to(device).eval()
    if bench.draft_ckpt is None:
        return target, None
    return target, load_checkpoint(model_from_flags(args.spec_draft_model, args), bench.draft_ckpt).to(device).eval()


def candidates(target, draft, args, ks, sigmas, budgets=None):
    """name -> (rollout, sigma or None, K or 'adaptive' or None, decoder); target-only ones alone without a draft.
    With budgets the speculative candidates are budget_candidates, not the fixed sigmas."""
    out = {}
    sigmas = () if budgets else sigmas
    for kind in ROLLOUTS:
        rollout = RolloutOptions(kind, args.cache_max_tokens, args.cache_stats) if kind == "cached" else RolloutOptions()
        out[f"target_{kind}"] = (kind, None, None, TargetOnlyDecoder(target, rollout))
        for sigma in sigmas if draft is not None else ():
            for k in ks + ["adaptive"]:
                args.spec_sigma, args.spec_k, args.spec_adaptive = sigma, *((max(ks), True) if k == "adaptive" else (k, False))
                decoder = SpeculativeDecoder(target, draft, SpecConfig.of(args), rollout)
                out[f"spec_{kind}_s{sigma:g}_k{k}"] = (kind, sigma, k, decoder)
    other = next(stats for stats in CACHE_STATS if stats != args.cache_stats)
    out[f"target_cached_{other}"] = ("cached", None, None,
                                     TargetOnlyDecoder(target, RolloutOptions("cached", args.cache_max_tokens, other)))
    return {**out, **budget_candidates(target, draft, args, max(ks), budgets or [])}


def budget_candidates(target, draft, args, k_max, budgets):
    """spec_cached_budget<B>: speculative `cached` with the sigma and K (1..k_max or adaptive) that the
    calibration on validation windows chooses for an MSE budget of B percent (speculative/calibration.py)."""
    if not budgets:
        return {}
    rollout = RolloutOptions("cached", args.cache_max_tokens, args.cache_stats)
    base = dataclasses.replace(SpecConfig.of(args), k=k_max, adaptive=False)
    batches = calibration_batches(args, next(target.parameters()).device)
    settings, seconds = measure_settings(target, draft, base, rollout, batches, args.test_pred_len,
                                         args.spec_calib_sigmas)
    print(f"calibration: {seconds:.1f} s on {sum(len(x) for x, _, _ in batches)} validation windows (untimed)")
    out = {}
    for budget in budgets:
        result = Calibration(budget, sum(len(x) for x, _, _ in batches), seconds, settings, choose(settings, budget))
        chosen = result.chosen
        print(f"budget {budget:g}%: "
              + (f"sigma {chosen.sigma:g}, K {chosen.k}, accept {chosen.acceptance_pct:.1f}%, MSE "
                 f"{chosen.mse_increase_pct:+.2f}% (upper 95% {chosen.mse_increase_upper_pct:+.2f}%), predicted "
                 f"x{chosen.predicted_speedup:.2f}" if chosen else "nothing within it: target-only steps"))
        decoder = SpeculativeDecoder(target, draft, result.config(base), rollout)
        out[f"spec_cached_budget{budget:g}"] = ("cached", chosen and chosen.sigma, chosen.k if chosen else 0, decoder)
    return out


def test_batches(args, batch_size, horizon, n_batches, device):
    args.batch_size, args.test_pred_len = batch_size, horizon
    loader = get_loader(args, get_dataset(args, "test"), "test")
    batches, first = [], 0
    for x, y, _, _ in loader:
        if len(batches) == n_batches:
            break
        batches.append((x.float().to(device), y.float()[:, -horizon:], list(range(first, first + len(x)))))
        first += len(x)
    return batches


def pass_plan(n_candidates, n_batches):
    """(batch index, rotation) of every timed pass: the smallest multiple of n_candidates passes that
    decodes every batch, pass r decoding batch r mod n_batches with the candidates rotated by r, so
    each candidate takes every position equally often."""
    n_passes = n_candidates * math.ceil(n_batches / n_candidates)
    return [(r % n_batches, r % n_candidates) for r in range(n_passes)]


def cost_meters(cands):
    """rollout -> its speculative decoder with the largest K, which measures the step costs that the
    rollout's speculative decoders share."""
    meters = {}
    for rollout, _, _, decoder in cands.values():
        if isinstance(decoder, SpeculativeDecoder):
            meter = meters.setdefault(rollout, decoder)
            if decoder.config.k > meter.config.k:
                meters[rollout] = decoder
    return meters


def warm_up(cands, meters, batch, horizon, device):
    """Untimed, before any timing: the step costs of each rollout, then every candidate once."""
    x, _, ids = batch
    for meter in meters.values():
        meter.sample_costs(x, horizon, WARM_UP_REPEATS)
    for rollout, _, _, decoder in cands.values():
        if isinstance(decoder, SpeculativeDecoder):
            decoder.costs = meters[rollout].costs
        decoder.generate(x, horizon, ids)
        if isinstance(decoder, SpeculativeDecoder):
            decoder.reset_counts(device)


@torch.no_grad()
def measure(cands, batches, horizon, device):
    """Per candidate: per-pass seconds and the forecasts of every batch."""
    names, meters = list(cands), cost_meters(cands)
    warm_up(cands, meters, batches[0], horizon, device)
    seconds = {name: [] for name in names}
    preds = {name: [None] * len(batches) for name in names}
    for b, rotation in pass_plan(len(names), len(batches)):
        x, _, ids = batches[b]
        for name in names[rotation:] + names[:rotation]:
            pred, s = timed(lambda: cands[name][3].generate(x, horizon, ids), device)
            seconds[name].append(s)
            preds[name][b] = pred.cpu()
        for meter in meters.values():
            meter.sample_costs(x, horizon)
    return seconds, {name: torch.cat(p) for name, p in preds.items()}


def mse(a, b):
    return (a.double() - b.double()).square().mean().item()


def grid_rows(cands, seconds, preds, truth, batch_size, horizon):
    median = {name: statistics.median(s) for name, s in seconds.items()}
    rows = []
    for name, (rollout, sigma, k, decoder) in cands.items():
        row = dict(batch_size=batch_size, horizon=horizon, candidate=name, rollout=rollout, sigma=sigma or "",
                   k=k if k else 0, mse_budget=name.removeprefix("spec_cached_budget") if "budget" in name else "",
                   per_batch_s=median[name], speedup_vs_sliding=median["target_sliding"] / median[name],
                   speedup_vs_cached=median["target_cached"] / median[name],
                   speedup_same_rollout=median[f"target_{rollout}"] / median[name],
                   mse=mse(preds[name], truth), mse_vs_target=mse(preds[name], preds[f"target_{rollout}"]),
                   mse_vs_sliding=mse(preds[name], preds["target_sliding"]),
                   target_calls_per_forecast=math.ceil(horizon / decoder.target.output_len))
        if isinstance(decoder, SpeculativeDecoder):
            row.update(speculative_columns(decoder))
        rows.append(row)
    return rows


def speculative_columns(decoder):
    counters = decoder.counters
    return dict(acceptance_pct=counters.acceptance_pct, patches_per_target_call=counters.patches_per_target_call,
                target_calls_per_forecast=counters.target_calls_per_forecast,
                **speed_report(decoder.costs, counters, reported_k(decoder.config, counters)))


def markdown(rows):
    head = ["batch", "H", "candidate", "per_batch_s", "x sliding", "x cached", "accept %", "patches/call",
            "target calls/forecast", "c (range)", "v (range)", "predicted", "x same rollout", "MSE", "MSE vs target",
            "MSE vs target sliding"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["batch_size"], r["horizon"], r["candidate"], f"{r['per_batch_s']:.4f}",
                 f"{r['speedup_vs_sliding']:.2f}", f"{r['speedup_vs_cached']:.2f}"]
        cells += [_fmt(r.get(name), digits) for name, digits in (("acceptance_pct", 1), ("patches_per_target_call", 2),
                                                                 ("target_calls_per_forecast", 2))]
        cells += [_with_range(r, "c", 3), _with_range(r, "v", 2), _fmt(r.get("predicted_speedup"), 2),
                  f"{r['speedup_same_rollout']:.2f}"]
        cells += [f"{r['mse']:.4f}", f"{r['mse_vs_target']:.4f}", f"{r['mse_vs_sliding']:.4f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _fmt(value, digits):
    return "" if value is None else f"{value:.{digits}f}"


def _with_range(row, name, digits):
    """'0.077 (0.065-0.090)': the median and the range over the repeats; empty for target-only rows."""
    if name not in row:
        return ""
    return f"{row[name]:.{digits}f} ({row[name + '_min']:.{digits}f}-{row[name + '_max']:.{digits}f})"


def plot(rows, path, ks):
    batch_sizes = sorted({r["batch_size"] for r in rows})
    fig, axes = plt.subplots(1, len(batch_sizes), figsize=(5 * len(batch_sizes), 4), squeeze=False)
    positions = {k: i for i, k in enumerate(ks + ["adaptive"])}
    for ax, batch_size in zip(axes[0], batch_sizes):
        lines = sorted({(r["rollout"], r["horizon"], r["sigma"]) for r in rows
                        if r["k"] in positions and not r["mse_budget"]})
        for rollout, horizon, sigma in lines:
            points = [(positions[r["k"]], r["speedup_vs_cached"]) for r in rows
                      if (r["batch_size"], r["rollout"], r["horizon"], r["sigma"]) == (batch_size, rollout, horizon, sigma)
                      and r["k"] in positions and not r["mse_budget"]]
            ax.plot(*zip(*points), marker="o", label=f"speculative {rollout}, H {horizon}, sigma {sigma:g}")
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="target-only cached")
        ax.set_xticks(range(len(positions)), [str(k) for k in positions])
        ax.set(title=f"batch {batch_size}", xlabel="K", ylabel="speedup over target-only cached")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    bench, args = parse(argv)
    device = torch.device(bench.device)
    torch.manual_seed(args.seed)
    target, draft = load_models(bench, args, device)
    print(f"target {args.model}: {n_parameters(target):,} parameters")
    if draft is not None:
        print(f"draft {args.spec_draft_model}: {n_parameters(draft):,} parameters "
              f"({n_parameters(draft) / n_parameters(target):.1%})")
    grid = [(b, h) for b in bench.batch_sizes for h in bench.horizons]
    rows = []
    for batch_size, horizon in tqdm(grid, desc="speedup grid"):
        args.batch_size, args.test_pred_len = batch_size, horizon
        cands = candidates(target, draft, args, bench.ks, bench.sigmas, bench.mse_budgets)
        batches = test_batches(args, batch_size, horizon, bench.n_batches, device)
        seconds, preds = measure(cands, batches, horizon, device)
        truth = torch.cat([y for _, y, _ in batches])
        rows += grid_rows(cands, seconds, preds, truth, batch_size, horizon)
    os.makedirs(bench.out_dir, exist_ok=True)
    write_table(os.path.join(bench.out_dir, "speedup.csv"), COLUMNS, rows)
    plot(rows, os.path.join(bench.out_dir, "speedup.png"), bench.ks)
    print(markdown(rows))
    print(f"wrote {bench.out_dir}/speedup.csv and {bench.out_dir}/speedup.png")
    return rows


if __name__ == "__main__":
    with exit_cleanly("the table and files are written at the end: nothing was written"):
        main()

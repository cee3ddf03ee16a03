"""What the last speculative runs gained, from result_inference_summary.txt (the quickstart's last lines).

    python scripts/analysis/speculative_summary.py [--file result_inference_summary.txt] [--last 3]

One line per `--spec_compare_baseline` record: target calls per forecast (target-only vs
speculative), acceptance, MSE of both (the baseline samples too with --target_sample) and the
wall-clock ratio, in the record's rollout."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from cli.parser import OneLineErrorParser  # noqa: E402
from utils.records import SUMMARY_FILE, parse_summary  # noqa: E402


# The fields a line shows; a record without one of them is not shown.
DESCRIBED = ("rollout", "accept_mode", "spec_k", "target_only_calls_per_forecast", "target_calls_per_forecast",
             "acceptance_pct", "baseline_mse", "mse", "mse_vs_target", "baseline_per_batch_s", "per_batch_s", "speedup")


def describe(record):
    line = (f"{record['rollout']:>7} {record['accept_mode']:>9} K {record['spec_k']}: target calls per forecast "
            f"{record['target_only_calls_per_forecast']} -> {record['target_calls_per_forecast']:.2f}, "
            f"acceptance {record['acceptance_pct']:.1f}%, MSE {record['baseline_mse']:.4f} -> {record['mse']:.4f} "
            f"({record['mse_vs_target']:.4f} from the target's own forecast), "
            f"wall clock {record['baseline_per_batch_s']:.3f} s -> {record['per_batch_s']:.3f} s per batch "
            f"= {record['speedup']:.2f}x")
    if "spec_mse_budget" in record:
        line += (f"; MSE budget {record['spec_mse_budget']:g}% (batch {record.get('batch_size', '?')}): sigma "
                 f"{record['chosen_sigma']:g} and K {record['chosen_k']} chosen on validation windows, test MSE "
                 f"{record['test_mse_increase_pct']:+.2f}%")
    if record["speedup"] <= 1.0:
        line += " -- no gain here: speculation did not pay on this machine for this pair"
    return line


def main(argv=None):
    parser = OneLineErrorParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", default=SUMMARY_FILE)
    parser.add_argument("--last", type=int, default=3, help="how many of the last compared records")
    args = parser.parse_args(argv)
    if args.last < 1:
        parser.error(f"--last {args.last} must be >= 1")
    if not os.path.isfile(args.file):
        parser.error(f"--file {args.file}: no such file (run.py writes it in the folder it runs in)")
    try:
        records = parse_summary(args.file)
    except ValueError as error:  # binary, not UTF-8
        parser.error(f"--file {args.file}: not a summary written by run.py ({type(error).__name__})")
    compared = [r for r in records if r.get("mode") == "speculative" and all(key in r for key in DESCRIBED)]
    if not compared:
        parser.error(f"--file {args.file} holds no complete speculative record with a baseline (run.py "
                     f"--use_speculative --spec_compare_baseline writes them)")
    for record in compared[-args.last:]:
        print(describe(record))


if __name__ == "__main__":
    main()

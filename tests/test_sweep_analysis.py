"""Sweep analysis (scripts/analysis/parse_sweep_results.py) on a fake sweep folder written with the
utils.spec_report writers, and the speculative-decoding / sweep scripts of the README (sections 4-5)."""
import csv
import importlib.util
import itertools
import subprocess
from pathlib import Path

import pytest

from speculative import SpecConfig
from speculative.counters import SpecCounters
from utils.spec_report import write_speculative_summary, write_standard_summary

REPO = Path(__file__).resolve().parents[1]
SPEC_TESTS = "scripts/supervised/rolling_forecast/spec_decoding_tests"
README_SCRIPTS = [f"{SPEC_TESTS}/test_{data}_timer_vs_spec_025x_stochastic.sh"
                  for data in ("etth1", "etth2", "ettm1", "ettm2", "traffic", "weather")] + [
    f"{SPEC_TESTS}/sweep_ettm1_spec_025x_stochastic.sh",
    f"{SPEC_TESTS}/sweep_ettm2_spec_025x_stochastic.sh",
    f"{SPEC_TESTS}/stochastic_draft_param_sweep.sh",
    f"{SPEC_TESTS}/tol_bias_sweep_etth1.sh",
    "scripts/analysis/parse_sweep_results.py",
]

# grid of the fake sweep: horizon, batch size, mode, K, sigma, bias
GRID = list(itertools.product([336, 720], [1, 32], ["tolerance", "lossless"], [1, 3], [0.1, 0.7], [1.0, 2.0]))


def as_written(value, digits):
    """A number as the record holds it (%.<digits>f)."""
    return float(f"{value:.{digits}f}")


def load_parser():
    spec = importlib.util.spec_from_file_location("parse_sweep_results",
                                                  REPO / "scripts/analysis/parse_sweep_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_point(i, horizon, batch, mode, k, sigma, bias):
    """Record inputs for grid point i: counters, config and the numbers of the record."""
    counters = SpecCounters(attempted=100 + i, accepted=3 * i % 97, forecasts=10, target_calls=40 + i,
                            draft_calls=k * (40 + i), patches_emitted=60 + 2 * i, residual_fallbacks=i % 3)
    config = SpecConfig(k=k, sigma=sigma, bias=bias, accept_mode=mode, draft_stochastic=True)
    numbers = dict(mse=0.3 + i / 1000, mae=0.4, total_gen_time_s=2.0 + i / 100, n_batches=4,
                   baseline_per_batch_s=0.9, mse_vs_target=i / 1e4, cost_ratio_c=0.12,
                   verify_cost_v=1.3, predicted_speedup=1.0 + i / 50)
    return counters, config, numbers


@pytest.fixture
def sweep_dir(tmp_path):
    """A sweep folder: a target-only record, one speculative record per GRID point, and a last one
    without baseline comparison (its speedup columns are empty)."""
    folder = tmp_path / "sweep_results_fake"
    folder.mkdir()
    summary = folder / "result_inference_summary.txt"
    write_standard_summary(summary, "target_only", 0.3, 0.4, 5.0, 4)
    for i, point in enumerate(GRID):
        counters, config, n = fake_point(i, *point)
        write_speculative_summary(summary, f"target_{i}", n["mse"], n["mae"], n["total_gen_time_s"],
                                  n["n_batches"], counters, config, baseline_per_batch_s=n["baseline_per_batch_s"],
                                  mse_vs_target=n["mse_vs_target"], baseline_mse=0.3, cost_ratio_c=n["cost_ratio_c"],
                                  verify_cost_v=n["verify_cost_v"], predicted_speedup=n["predicted_speedup"],
                                  test_pred_len=point[0], batch_size=point[1])
    counters, config, n = fake_point(0, *GRID[0])
    write_speculative_summary(summary, "no_baseline", n["mse"], n["mae"], n["total_gen_time_s"], n["n_batches"],
                              counters, config, test_pred_len=96, batch_size=8)
    return folder


def test_csv_rows_equal_the_records(sweep_dir):
    parser = load_parser()
    parser.analyse(str(sweep_dir))
    with open(sweep_dir / "sweep_summary.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == parser.COLUMNS
        rows = list(reader)
    assert len(rows) == len(GRID) + 1  # the target-only record is skipped
    for i, (row, point) in enumerate(zip(rows, GRID)):
        counters, config, n = fake_point(i, *point)
        assert row["setting"] == f"target_{i}"
        assert (int(row["test_pred_len"]), int(row["batch_size"]), row["accept_mode"], int(row["spec_k"]),
                float(row["spec_sigma"]), float(row["spec_accept_bias"])) == point
        assert int(row["accepted"]) == counters.accepted and int(row["attempted"]) == counters.attempted
        assert float(row["acceptance_pct"]) == as_written(counters.acceptance_pct, 2)
        assert float(row["patches_per_target_call"]) == as_written(counters.patches_per_target_call, 3)
        assert int(row["residual_fallbacks"]) == counters.residual_fallbacks
        assert float(row["mse"]) == as_written(n["mse"], 6)
        assert float(row["mse_vs_target"]) == as_written(n["mse_vs_target"], 6)
        per_batch_s = n["total_gen_time_s"] / n["n_batches"]
        assert float(row["per_batch_s"]) == as_written(per_batch_s, 6)
        assert float(row["speedup"]) == as_written(n["baseline_per_batch_s"] / per_batch_s, 3)
        assert float(row["predicted_speedup"]) == as_written(n["predicted_speedup"], 3)
        assert row["draft_stochastic"] == "1"
    last = rows[-1]
    assert (last["setting"], last["test_pred_len"], last["batch_size"]) == ("no_baseline", "96", "8")
    assert last["speedup"] == last["mse_vs_target"] == last["predicted_speedup"] == ""


def test_plots_and_markdown(sweep_dir, tmp_path, monkeypatch, capsys):
    parser = load_parser()
    monkeypatch.chdir(tmp_path)  # no folder given: every sweep_results_* here
    parser.main(["--markdown", "table.md"])
    for name in parser.PLOTS:
        assert (sweep_dir / name).stat().st_size > 1000
    table = (tmp_path / "table.md").read_text()
    assert capsys.readouterr().out.strip() == table.strip()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(GRID) + 1  # header, one per speculative record
    assert rows[0].split(" | ")[0] == "| horizon"
    assert rows[1].startswith("| 336 | 1 | 1 | tolerance | 0.1 | 1 | ")  # GRID[0]: horizon, batch, K, mode, sigma, bias
    assert rows[-1].endswith("| - | - | - |")  # no baseline comparison: no MSE vs target, speedups


def test_readme_scripts_exist_and_parse():
    for name in README_SCRIPTS:
        assert (REPO / name).is_file(), name
    for name in [n for n in README_SCRIPTS if n.endswith(".sh")] + ["scripts/lib.sh"]:
        result = subprocess.run(["bash", "-n", str(REPO / name)], capture_output=True, text=True)
        assert result.returncode == 0, (name, result.stderr)

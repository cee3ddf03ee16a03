"""Shared test helpers. `make_args` builds the run.py argument namespace the models and Exp classes take."""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / 'shared'
ETT_ROOT = SHARED / 'datasets' / 'ETT-small'
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cli.parser import build_parser, fill_defaults, required_flags  # noqa: E402

# Tests that read the data mirror (../shared) skip without it.
needs_ett = pytest.mark.skipif(not (ETT_ROOT / 'ETTh1.csv').is_file(), reason=f'ETTh1.csv not found under {ETT_ROOT}')
needs_shared = pytest.mark.skipif(not (SHARED / 'seed-README.md').is_file(), reason=f'{SHARED} not found')

# Test models are tiny: one thread each is as fast and keeps parallel jobs from oversubscribing the cores.
torch.set_num_threads(1)

REQUIRED_FLAGS = required_flags(data='MultivariateDatasetBenchmark')


def make_args(**overrides):
    """run.py's namespace (parsed defaults + required flags), with `overrides` set as attributes.

    Overrides are applied before `fill_defaults`, so derived values (e.g. distill_target_d_model from
    d_model) follow them. Unknown names raise, so a typo cannot silently leave a default in place.
    """
    args = build_parser().parse_args(REQUIRED_FLAGS)
    for name, value in overrides.items():
        if not hasattr(args, name):
            raise AttributeError(f"make_args: run.py has no flag '{name}'")
        setattr(args, name, value)
    return fill_defaults(args)


def cli_args(flags):
    """run.py command line from a dict of flags: True -> bare switch, False/None -> omitted, a list -> its values."""
    out = []
    for name, value in flags.items():
        if value is True:
            out.append(f'--{name}')
        elif isinstance(value, (list, tuple)):
            out += [f'--{name}', *map(str, value)]
        elif value is not False and value is not None:
            out += [f'--{name}', str(value)]
    return out


def write_csv(path, rows=400, cells=None):
    """Date column + three noisy sines (period 24): columns a, b, OT. `cells` {(row, column): value} overwrites
    single values (NaN, text, inf)."""
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    frame = pd.DataFrame({'date': pd.date_range('2020-01-01', periods=rows, freq='h').astype(str)})
    for k, name in enumerate(['a', 'b', 'OT']):
        frame[name] = np.sin(2 * np.pi * t / 24 + k) + 0.05 * rng.standard_normal(rows)
    for (row, column), value in (cells or {}).items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def toy_workdir(tmp_path, monkeypatch):
    """A fresh cwd (result files and test_results/ land here) holding the synthetic `toy.csv`."""
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / 'toy.csv')
    return tmp_path

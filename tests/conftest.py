"""Shared test setup: the data mirror and its `data` marker, run.py command lines and namespaces, the toy CSV,
tiny models and their checkpoints, and the working-folder fixtures."""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cli.parser import build_parser, fill_defaults, required_flags  # noqa: E402
from data_provider.fetch import default_mirror  # noqa: E402
from models import model_from_flags  # noqa: E402
from utils.checkpoint import save_checkpoint  # noqa: E402

# The data mirror: benchmark files (DATASETS) and the seed README next to the repository. Tests marked `data`
# read it and skip without it.
DATASETS = default_mirror()
ETT_ROOT = DATASETS / 'ETT-small'
SEED_README = REPO_ROOT.parent / 'shared' / 'seed-README.md'
MIRROR_FILES = (ETT_ROOT / 'ETTh1.csv', SEED_README)

# Test models are tiny: one thread each is as fast and keeps parallel jobs from oversubscribing the cores.
torch.set_num_threads(1)

REQUIRED_FLAGS = required_flags(data='MultivariateDatasetBenchmark')


def pytest_collection_modifyitems(config, items):
    missing = [str(path) for path in MIRROR_FILES if not path.is_file()]
    if missing:
        skip = pytest.mark.skip(reason=f'the data mirror is missing: {", ".join(missing)} not found')
        for item in items:
            if 'data' in item.keywords:
                item.add_marker(skip)


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


def tiny_model(name='timer_xl', seed=0, **flags):
    """A freshly initialised `name` model built from `flags` (their --model aside), in eval mode; `seed` fixes
    its weights."""
    torch.manual_seed(seed)
    return model_from_flags(name, make_args(**{**flags, 'model': name})).eval()


def save_tiny(path, name='timer_xl', seed=0, **flags):
    """tiny_model(name, seed, **flags) saved as a checkpoint at `path`; returns the model."""
    model = tiny_model(name, seed, **flags)
    save_checkpoint(model, str(path))
    return model


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
def workdir(tmp_path, monkeypatch):
    """A fresh cwd: result files and test_results/ land here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def toy_workdir(workdir):
    """The fresh cwd holding the synthetic `toy.csv`."""
    write_csv(workdir / 'toy.csv')
    return workdir

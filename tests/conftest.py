"""Shared test helpers. `make_args` builds the run.py argument namespace the models and Exp classes take."""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from run import build_parser, fill_defaults  # noqa: E402

# Test models are tiny: one thread each is as fast and keeps parallel jobs from oversubscribing the cores.
torch.set_num_threads(1)

REQUIRED_FLAGS = ['--task_name', 'forecast', '--is_training', '1', '--model_id', 'test',
                  '--model', 'timer_xl', '--data', 'MultivariateDatasetBenchmark']


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
    """run.py command line from a dict of flags: True -> bare switch, False/None -> omitted."""
    out = []
    for name, value in flags.items():
        if value is True:
            out.append(f'--{name}')
        elif value is not False and value is not None:
            out += [f'--{name}', str(value)]
    return out

"""Single entry point: parse and validate flags, seed, then dispatch to an Exp class."""
import contextlib
import random
import sys

import numpy as np
import torch

from cli.parser import parse_flags
from cli.paths import checkpoint_folders
from cli.validate import validate
from exp.exp_distill import ExpDistill
from exp.exp_forecast import ExpForecast
from exp.exp_speculative import ExpSpeculative
from utils.distributed import launched_rank
from utils.failures import exit_cleanly, exit_on_usage_error
from utils.lock import folder_lock

LOCK_FILE = "run.lock"


def parse_args(argv=None):
    """The validated flags; a mistake is one line on stderr and exit status 2."""
    args = parse_flags(argv)
    with exit_on_usage_error():
        validate(args)
    return args


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def experiment_class(args):
    """Speculative test, distillation, or the forecasting loop (also --task_name pretrain, which only
    changes the setting string)."""
    if args.use_speculative:
        return ExpSpeculative
    if args.distill:
        return ExpDistill
    return ExpForecast


def writes_checkpoints(args):
    """Training writes checkpoints; under --ddp only rank 0 does."""
    return args.is_training and (not args.ddp or launched_rank() == 0)


def main(argv=None):
    with exit_cleanly("checkpoints and results saved before it are kept"), contextlib.ExitStack() as locks:
        args = parse_args(argv)
        with exit_on_usage_error():
            for folder in checkpoint_folders(args) if writes_checkpoints(args) else ():
                locks.enter_context(folder_lock(folder, LOCK_FILE, "training"))
        seed_everything(args.seed)
        exp = experiment_class(args)(args)
        exp.run()

if __name__ == "__main__":
    main(sys.argv[1:])

"""The models the flags build, on the meta device (every parameter's name and shape, no memory, no init cost), and
whether their parameters fit in the memory the run would use."""
import contextlib
import io
import os

import torch

from models import build_model, config_of, n_parameters
from utils.failures import UsageError


def shapes_only_model(key, config):
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):
        return build_model(key, config)


def built_shapes(key, flags, configure=config_of):
    """The model of family key configure builds from these flags; a size the family refuses (e.g. TTM's) is a
    UsageError that stops the run here."""
    try:
        return shapes_only_model(key, configure(key, flags))
    except ValueError as error:
        raise UsageError(f"{key}: {error}") from None


# Bytes per parameter: float32 weights; training adds their gradients and Adam's two moments.
BYTES_PER_PARAMETER = {0: 4, 1: 16}


def check_memory(args, model):
    """Sizes whose parameters alone cannot fit in the memory the run would use are refused before anything is
    allocated (activations come on top, so passing this is no promise)."""
    needed = n_parameters(model) * BYTES_PER_PARAMETER[args.is_training]
    where, available = run_memory(args)
    if needed > available:
        raise UsageError(f"--model {args.model} with --d_model {args.d_model} --d_ff {args.d_ff} --e_layers "
                         f"{args.e_layers} has {n_parameters(model):,} parameters: about {needed / 2 ** 30:.1f} GiB"
                         f"{' with gradients and Adam state' if args.is_training else ''}, more than the "
                         f"{available / 2 ** 30:.1f} GiB of {where}")


def run_memory(args):
    """(what, bytes) of the memory the run's models live in: the GPU run.py picks, or the machine's RAM."""
    if torch.cuda.is_available() and 0 <= args.gpu < torch.cuda.device_count():
        return f"cuda:{args.gpu}", torch.cuda.get_device_properties(args.gpu).total_memory
    return "this machine's memory", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

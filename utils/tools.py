"""Early stopping, learning-rate schedules and forecast plots (training.md section 4)."""
import math
import os

import numpy as np

LRADJ_GAMMA = {"type1": 0.1, "type2": 0.5, "type3": 0.9}
COSINE_ETA_MIN = 1e-8


def learning_rate_at(args, epoch):
    """Learning rate of 0-based `epoch` under --cosine/--tmax or --lradj (constant: lr0 throughout)."""
    lr0 = args.learning_rate
    if args.cosine:
        return COSINE_ETA_MIN + (lr0 - COSINE_ETA_MIN) * (1 + math.cos(math.pi * epoch / args.tmax)) / 2
    if args.lradj in LRADJ_GAMMA:
        return lr0 * LRADJ_GAMMA[args.lradj] ** epoch
    return lr0


def set_learning_rate(optimizer, lr, verbose=True):
    for group in optimizer.param_groups:
        group["lr"] = lr
    if verbose:
        print(f"Updating learning rate to {lr}")


class EarlyStopping:
    """Save on every validation loss <= the best so far; stop after `patience` epochs without one."""

    def __init__(self, patience, save, verbose=True):
        self.patience = patience
        self.save = save
        self.log = print if verbose else (lambda *_: None)
        self.best = None
        self.counter = 0
        self.early_stop = False

    def __call__(self, val_loss):
        if self.best is None or val_loss <= self.best:
            old = np.inf if self.best is None else self.best
            self.log(f"Validation loss decreased ({old:.6f} --> {val_loss:.6f}).  Saving model ...")
            self.save()
            self.best = val_loss
            self.counter = 0
        else:
            self.counter += 1
            self.log(f"EarlyStopping counter: {self.counter} out of {self.patience}")
            self.early_stop = self.counter >= self.patience


def plot_forecast(true, pred, path, context=None):
    """PNG of the truth against the forecast (one variable), with the input context if given."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path), exist_ok=True)
    offset = 0 if context is None else len(context)
    fig, ax = plt.subplots(figsize=(10, 4))
    if context is not None:
        ax.plot(np.arange(offset), context, color="gray", linewidth=1, label="input")
    ax.plot(np.arange(offset, offset + len(true)), true, label="ground truth", linewidth=1.5)
    ax.plot(np.arange(offset, offset + len(pred)), pred, label="forecast", linewidth=1.5)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

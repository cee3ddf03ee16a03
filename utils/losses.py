"""Training losses of the draft models (training.md section 9)."""
import torch


def gaussian_nll(mean, logvar, target, var_reg):
    """mean(0.5*(s + (mu - y)^2 exp(-s))) + var_reg * mean(relu(-s - 5)): Gaussian NLL without its constant,
    plus a penalty on log-variances below -5 that keeps the variance from collapsing."""
    nll = 0.5 * (logvar + (mean - target).square() * torch.exp(-logvar))
    return nll.mean() + var_reg * torch.relu(-logvar - 5).mean()

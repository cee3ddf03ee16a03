"""Per-window instance normalisation (model.md 3.1): no affine parameters."""
import torch


def normalize(x, eps=1e-5):
    """x: [B, L, C]. Returns (x_norm, mean, std), statistics of shape [B, 1, C]."""
    mean = x.mean(dim=1, keepdim=True).detach()
    x = x - mean
    std = torch.sqrt(torch.var(x, dim=1, keepdim=True, unbiased=False) + eps)
    return x / std, mean, std


def denormalize(y, mean, std):
    return y * std + mean

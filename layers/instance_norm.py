"""Per-window instance normalisation (model.md 3.1): no affine parameters.

Statistics are a pair (mean, std), each [B, 1, C]. A full forward computes them from its window; the
cached rollout freezes those of the initial window in the KV cache (speculative.md 2.1)."""
import torch


def instance_stats(x, eps=1e-5):
    """x: [B, L, C] -> (mean, std): mean detached, std = sqrt(population variance + eps), not detached."""
    mean = x.mean(dim=1, keepdim=True).detach()
    std = torch.sqrt(torch.var(x - mean, dim=1, keepdim=True, unbiased=False) + eps)
    return mean, std


def normalize(x, stats):
    mean, std = stats
    return (x - mean) / std


def denormalize(y, stats):
    mean, std = stats
    return y * std + mean

"""Instance normalisation (model.md 3.1): no affine parameters.

Statistics are a pair (mean, std), each [B, S, C]: S = 1 for one set over the whole call (a full
forward's own window, or `frozen` in the cached rollout), or S = T, one set per time step of the T
steps fed (`trailing`, speculative.md 2.1): step s's points are normalised, and the prediction read at
step s denormalised, with set s."""
import torch


def instance_stats(x, eps=1e-5, dim=1):
    """x: [B, L, C] -> (mean, std) [B, 1, C] (over `dim`, kept): mean detached, std = sqrt(population variance
    + eps), not detached."""
    mean = x.mean(dim=dim, keepdim=True).detach()
    std = torch.sqrt(torch.var(x - mean, dim=dim, keepdim=True, unbiased=False) + eps)
    return mean, std


def trailing_stats(series, ends, length, eps=1e-5):
    """(mean, std) [B, W, C] of the `length` points of series [B, T, C] that end before ends [B, W] (exclusive):
    the statistics a window of `length` points ending there normalises with (as instance_stats)."""
    windows = series.unfold(1, length, 1)  # a view: windows[b, s] holds points s .. s+length-1, [C, length]
    picked = windows[torch.arange(series.shape[0], device=ends.device)[:, None], ends - length]  # [B, W, C, length]
    return tuple(s.squeeze(-1) for s in instance_stats(picked, eps, dim=-1))


def rollout_stats(series, context_len, patch_len):
    """Each token's statistics [B, T, C] in the cached rollout of series [B, T*P, C] whose first context_len
    points are the context: the context window's for the context tokens, the trailing ones after them."""
    n_context, n_tokens = context_len // patch_len, series.shape[1] // patch_len
    context = instance_stats(series[:, :context_len])
    ends = torch.arange(n_context + 1, n_tokens + 1, device=series.device) * patch_len
    later = trailing_stats(series, ends.expand(series.shape[0], -1), context_len)
    return tuple(torch.cat([c.expand(-1, n_context, -1), t], 1) for c, t in zip(context, later))


def _per_step(t, stat):
    """t [B, S*Q, C] as [B, S, Q, C] and stat [B, S, C] as [B, S, 1, C], so that they broadcast step by step."""
    return t.unflatten(1, (stat.shape[1], -1)), stat.unsqueeze(2)


def normalize(x, stats):
    mean, std = stats
    x, mean = _per_step(x, mean)
    return ((x - mean) / std.unsqueeze(2)).flatten(1, 2)


def denormalize(y, stats):
    mean, std = stats
    y, mean = _per_step(y, mean)
    return (y * std.unsqueeze(2) + mean).flatten(1, 2)


def denormalize_logvar(logvar, stats):
    """A log-variance in normalised units -> in the data's units: + 2 log std, step by step."""
    logvar, std = _per_step(logvar, stats[1])
    return (logvar + 2 * torch.log(std)).flatten(1, 2)

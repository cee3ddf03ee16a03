"""Target-only sliding-window rollout (training.md section 7) and the per-sample random streams
shared by the `--target_sample` baseline and speculative decoding (speculative.md section 4).

A model maps a window x [B, L, C] to [B, N·O, C] (N = L/P tokens of P points); the last O rows
predict the next patch. A stochastic draft returns (mean, logvar) instead; point forecasts use mean.
"""
import numpy as np
import torch


def last_token(model, x, patch_len):
    """Prediction for the patch after window x: (mean, logvar), each [B, O, C].

    O is read off the output (N·O rows for N = L/P tokens); logvar is None for a point model.
    """
    output = model(x)
    mean, logvar = output if isinstance(output, tuple) else (output, None)
    out_len = mean.shape[1] * patch_len // x.shape[1]
    return mean[:, -out_len:], None if logvar is None else logvar[:, -out_len:]


def next_patch(model, x, patch_len):
    """Point forecast of the next patch: out[:, -O:, :], the mean of a stochastic output."""
    return last_token(model, x, patch_len)[0]


@torch.no_grad()
def sliding_rollout(model, x, horizon, patch_len, sample_sigma=None, generators=None):
    """Forecast `horizon` steps by ceil(H/O) calls, sliding a window of fixed length when O = P.

    Each step drops the oldest P points and appends the O predicted ones. With `sample_sigma`
    every emitted patch is μ + σ·ε, ε drawn from `generators` (one per sample, see
    sample_generators), which makes this the `--target_sample` baseline. Returns [B, H, C].
    """
    if sample_sigma is not None and generators is None:
        raise ValueError("sliding_rollout: sample_sigma needs one generator per sample")
    patches, window, n_points = [], x, 0
    while n_points < horizon:
        patch = next_patch(model, window, patch_len)
        if sample_sigma is not None:
            noise = normal_draws(generators, patch.shape[1:], patch.device)
            patch = patch + sample_sigma * noise.to(patch.dtype)
        patches.append(patch)
        n_points += patch.shape[1]
        window = torch.cat([window[:, patch_len:], patch], dim=1)
    return torch.cat(patches, dim=1)[:, :horizon]


def sample_generators(seed, sample_ids):
    """One CPU torch.Generator per sample, seeded from (seed, global sample id).

    torch's CPU generator keeps only the low 32 bits of a seed, so seed*2^32 + id would give every
    seed the same streams. Instead a hashed 32-bit base from `seed` is offset by the sample id:
    distinct seeds for all samples of a run, and a sample's stream does not depend on its batch.
    """
    base = int(np.random.SeedSequence(seed).generate_state(1)[0])
    return [torch.Generator().manual_seed((base + int(i)) % 2**32) for i in sample_ids]


def normal_draws(generators, shape, device):
    """Standard normal float64 draws [len(generators), *shape], drawn on CPU, one row per sample."""
    if not generators:
        return torch.empty((0, *shape), dtype=torch.float64, device=device)
    draws = [torch.randn(tuple(shape), generator=g, dtype=torch.float64) for g in generators]
    return torch.stack(draws).to(device)


def log_uniform_draws(generators, counts, device):
    """log U for U ~ Uniform(0, 1): [len(generators), max(counts)] float64, row i holding counts[i]
    draws from generators[i] and +inf padding after them (+inf never passes an acceptance test)."""
    width = max(counts, default=0)
    log_u = torch.full((len(generators), width), float("inf"), dtype=torch.float64)
    for row, (g, count) in enumerate(zip(generators, counts)):
        log_u[row, :count] = torch.rand(count, generator=g, dtype=torch.float64).log()
    return log_u.to(device)

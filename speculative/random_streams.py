"""Per-sample random streams shared by the `--target_sample` baseline and speculative decoding
(speculative.md section 4): sample i draws only from its own CPU generator, seeded from
(--seed, its global sample id), so its output does not depend on the batch it is in."""
import numpy as np
import torch


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

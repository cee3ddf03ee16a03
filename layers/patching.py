"""Series -> patches, with the optional instance normalisation that the outputs undo."""
from layers.instance_norm import instance_stats, normalize


def patchify(x, patch_len, use_norm, cache=None):
    """x [B, T*P, C] -> (patches [B, C, T, P], stats).

    stats is None without use_norm; otherwise those frozen in `cache`, or the window's own (which a
    cache with none yet freezes: its first forward is the prefill)."""
    batch, length, n_vars = x.shape
    if length % patch_len:
        raise ValueError(f"input length {length} is not a multiple of input_token_len {patch_len}")
    stats = None
    if use_norm:
        stats = cache.norm_stats if cache is not None and cache.norm_stats is not None else instance_stats(x)
        if cache is not None:
            cache.norm_stats = stats
        x = normalize(x, stats)
    return x.transpose(1, 2).reshape(batch, n_vars, length // patch_len, patch_len), stats

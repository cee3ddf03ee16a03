"""Series -> patches, with the optional instance normalisation that the outputs undo."""
from layers.instance_norm import instance_stats, normalize


def patchify(x, patch_len, use_norm, stats=None):
    """x [B, T*P, C] -> (patches [B, C, T, P], stats).

    stats is None without use_norm; otherwise the given ones ([B, 1, C] or one set per step, [B, T, C]),
    or by default the window's own."""
    batch, length, n_vars = x.shape
    if length % patch_len:
        raise ValueError(f"input length {length} is not a multiple of input_token_len {patch_len}")
    if not use_norm:
        stats = None
    elif stats is None:
        stats = instance_stats(x)
    if stats is not None:
        x = normalize(x, stats)
    return x.transpose(1, 2).reshape(batch, n_vars, length // patch_len, patch_len), stats

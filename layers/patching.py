"""Window -> patches, with the optional instance normalisation that the outputs undo."""
from layers.instance_norm import normalize


def patchify(x, patch_len, use_norm):
    """x [B, L, C] -> (patches [B, C, N, P], stats): stats is (mean, std) under use_norm, else None."""
    batch, length, n_vars = x.shape
    if length % patch_len:
        raise ValueError(f"input length {length} is not a multiple of input_token_len {patch_len}")
    stats = None
    if use_norm:
        x, *stats = normalize(x)
    return x.transpose(1, 2).reshape(batch, n_vars, length // patch_len, patch_len), stats

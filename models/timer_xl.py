"""Timer-XL (Liu et al., ICLR 2025) as in OpenLTM, with time-index RoPE (model.md sections 2-5).

x [B, L, C] -> patches [B, C, N, P] -> tokens [B, N*C, D] (time-major) -> TimerBlock
-> head [B, N*C, O] -> [B, N*O, C]. Row n*O + t predicts time (n+1)*P + t from tokens <= n.

One call signature for the full and the incremental forward: model(x, cache, stats) -> Forecast. Without
a cache x is a whole window; with a KV cache (layers/kv_cache.py) x holds only the new time steps, their
time labels continue each sample's cache, and the caller gives their normalisation statistics (one set
for the call, or one per step: speculative.md 2.1). A full forward is the same code with no cache. --rope_position flat rotates by OpenLTM's flattened
index c*N + n instead of the time index (model.md 3.4a): OpenLTM's multivariate checkpoints then give
OpenLTM's numbers, but only in full forwards (no cache).
"""
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from torch import nn

from layers.attention import AttentionLayer, TimeAttention, TokenLabels
from layers.instance_norm import denormalize
from layers.patching import patchify
from layers.transformer import TimerBlock, TimerLayer
from models.output import Forecast

ROPE_HEAD_DIM_MULTIPLE = 4  # RoPE rotates whole pairs of half the head


@dataclass(frozen=True)
class Dims:
    d_model: int
    n_heads: int
    d_ff: int
    e_layers: int

    @staticmethod
    def of(flags, prefix=""):
        """The sizes --{prefix}d_model, --{prefix}n_heads, --{prefix}d_ff, --{prefix}e_layers."""
        return Dims(*(getattr(flags, f"{prefix}{name}") for name in ("d_model", "n_heads", "d_ff", "e_layers")))

    def tag(self):
        """The sizes part of a setting string."""
        return f"el{self.e_layers}_dm{self.d_model}_dff{self.d_ff}_nh{self.n_heads}"

    def check(self, head_dim_multiple):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        head_dim = self.d_model // self.n_heads
        if head_dim % head_dim_multiple:
            raise ValueError(f"head dim d_model/n_heads = {head_dim} must be a multiple of {head_dim_multiple}")


@dataclass(frozen=True)
class TimerConfig:
    """What a Timer is built from: its sizes, the token lengths (--input_token_len, --output_token_len) and the
    flags of the same names. scaled_from: a draft's, the target sizes its dims are scaled from."""
    dims: Dims
    patch_len: int
    output_len: int
    use_norm: bool
    dropout: float
    activation: str
    flash_attention: bool
    scaled_from: Optional[Dims] = field(default=None, kw_only=True)

    head_dim_multiple: ClassVar[int] = 1

    @classmethod
    def of(cls, flags, **given):
        """The configuration run.py's flags give; given: fields that are not read from them (a subclass's own
        fields, a draft's sizes)."""
        read = dict(dims=Dims.of(flags), patch_len=flags.input_token_len, output_len=flags.output_token_len,
                    use_norm=flags.use_norm, dropout=flags.dropout, activation=flags.activation,
                    flash_attention=flags.flash_attention)
        return cls(**{**read, **given})

    def __post_init__(self):
        self.dims.check(self.head_dim_multiple)


@dataclass(frozen=True)
class TimerXLConfig(TimerConfig):
    """A Timer's configuration and Timer-XL's own flags; stochastic: a log-variance head beside the mean head (the
    draft's --draft_stochastic)."""
    covariate: bool
    rope_position: str
    stochastic: bool = field(default=False, kw_only=True)

    head_dim_multiple: ClassVar[int] = ROPE_HEAD_DIM_MULTIPLE

    @classmethod
    def of(cls, flags, **given):
        return super().of(flags, covariate=flags.covariate, rope_position=flags.rope_position, **given)


class TimerXL(nn.Module):
    patches_per_call = 1  # one next-patch prediction per input token
    head_dim_multiple = ROPE_HEAD_DIM_MULTIPLE
    stochastic = False

    @staticmethod
    def config_from(flags):
        return TimerXLConfig.of(flags)

    @staticmethod
    def setting_sizes(config):
        return config.dims.tag()

    def __init__(self, config: TimerXLConfig):
        super().__init__()
        dims = self.dims = config.dims
        self.patch_len = config.patch_len
        self.output_len = config.output_len
        self.use_norm = config.use_norm
        self.flat_positions = config.rope_position == "flat"
        self.embedding = nn.Linear(self.patch_len, dims.d_model)
        self.blocks = TimerBlock([self._layer(config) for _ in range(dims.e_layers)], dims.d_model)
        self.n_layers = dims.e_layers
        self._build_head(dims.d_model)

    def _layer(self, config):
        dims = config.dims
        inner = TimeAttention(dims.d_model // dims.n_heads, dims.n_heads, config.dropout, covariate=config.covariate,
                              use_sdpa=config.flash_attention, flat_positions=self.flat_positions)
        attention = AttentionLayer(inner, dims.d_model, dims.n_heads)
        return TimerLayer(attention, dims.d_model, dims.d_ff, config.dropout, config.activation)

    def _build_head(self, d_model):
        self.head = nn.Linear(d_model, self.output_len)

    def forward(self, x, cache=None, stats=None):
        """x [B, T*P, C]: a window, or the T new time steps on top of `cache`. One prediction per new token.
        stats: the normalisation statistics, [B, 1, C] or one set per step [B, T, C] (default: the window's own)."""
        if cache is not None and self.flat_positions:
            raise ValueError("--rope_position flat rotates by c*N + n, which shifts as the context grows: "
                             "no KV cache (use --rollout sliding)")
        check_stats_on_top_of(cache, stats, self.use_norm)
        patches, stats = patchify(x, self.patch_len, self.use_norm, stats)
        batch, n_vars, n_steps, _ = patches.shape
        h = self.embedding(patches.transpose(1, 2)).flatten(1, 2)
        first_time = None if cache is None else cache.start_times(batch, x.device)
        h = self.blocks(h, TokenLabels.grid(n_vars, n_steps, x.device, first_time), n_vars, cache, n_steps)
        return self._readout(h, n_vars, stats, cache)

    def _to_series(self, y, n_vars):
        """[B, T*C, O] -> [B, T*O, C]."""
        return y.unflatten(1, (-1, n_vars)).transpose(2, 3).flatten(1, 2)

    def _readout(self, h, n_vars, stats, cache):
        y = self._to_series(self.head(h), n_vars)
        return Forecast(y if stats is None else denormalize(y, stats), cache=cache)


def check_stats_on_top_of(cache, stats, use_norm):
    """Steps fed on top of cached ones are not a window: their statistics must come from the caller."""
    if use_norm and stats is None and cache is not None and cache.lengths is not None:
        raise ValueError("new time steps on top of a KV cache need their normalisation statistics (stats=...)")


Model = TimerXL

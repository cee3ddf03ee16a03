"""TTM: a TinyTimeMixer-style forecaster (Ekambaram et al., 2024) that forecasts K patches in ONE call.

x [B, L, C] -> instance norm (--use_norm) -> patches [B, C, N, P] -> Linear(P -> D) -> backbone ->
decoder -> head -> [B, K*P, C]: the K = --ttm_patches patches after the window (P = --input_token_len,
L = --seq_len, D = --hidden_dim). A model of its own context length: it refuses other windows.

- Backbone, adaptive patching: levels k = --AP_levels, ..., 1, 0. Level k views each patch's D
  features as 2^k sub-patches of D/2^k features ([B, C, N*2^k, D/2^k], finer patches first) and runs
  --layers mixer layers on that view.
- Mixer layer: mix across patches, then across features, then across channels (--mode mix_channel;
  needs C = --n_vars). Each mix is LayerNorm -> MLP (expansion --factor, GELU) -> gated attention
  (y * softmax(W y)) -> residual, over that one axis.
- Decoder: one mixer layer at width D, channel mixing with --d_mode mix_channel.
- Head: per channel, the flattened N*D features -> K*P values; with --draft_stochastic a mean head and a
  log-variance head (models/output.py gaussian_forecast, as the stochastic Timer-XL draft).

One call forecasts every patch it will propose, so it takes no KV cache: the rollouts give it the
window of the last L points (patches_per_call = K, speculative/proposer.py).
"""
from dataclasses import dataclass

import torch
from torch import nn

from layers.instance_norm import denormalize
from layers.patching import patchify
from models.output import LOGVAR_BIAS_INIT, Forecast, gaussian_forecast

MODES = ("common_channel", "mix_channel")


class GatedMLP(nn.Module):
    """h + gate(y) * y with y = MLP(LayerNorm(h)) over the last axis of size `size`."""

    def __init__(self, size, factor, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(size)
        self.mlp = nn.Sequential(nn.Linear(size, factor * size), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(factor * size, size), nn.Dropout(dropout))
        self.gate = nn.Linear(size, size)

    def forward(self, h):
        y = self.mlp(self.norm(h))
        return h + y * torch.softmax(self.gate(y), dim=-1)


class Mix(nn.Module):
    """A GatedMLP across one axis of h [B, C, N, D] (1: channels, 2: patches, 3: features)."""

    def __init__(self, axis, size, factor, dropout):
        super().__init__()
        self.axis = axis
        self.mlp = GatedMLP(size, factor, dropout)

    def forward(self, h):
        return self.mlp(h.movedim(self.axis, -1)).movedim(-1, self.axis)


def mixer_layer(n_patches, width, n_vars, mix_channels, factor, dropout):
    mixes = [Mix(2, n_patches, factor, dropout), Mix(3, width, factor, dropout)]
    if mix_channels:
        mixes.append(Mix(1, n_vars, factor, dropout))
    return nn.Sequential(*mixes)


class Level(nn.Module):
    """Backbone level k: its mixer layers see 2^k times as many patches, 2^k times narrower."""

    def __init__(self, k, n_patches, width, n_layers, mixer_args):
        super().__init__()
        self.split = 2**k
        self.layers = nn.Sequential(*[mixer_layer(n_patches * self.split, width // self.split, *mixer_args)
                                      for _ in range(n_layers)])

    def forward(self, h):
        batch, n_vars, n_patches, width = h.shape
        view = h.reshape(batch, n_vars, n_patches * self.split, width // self.split)
        return self.layers(view).reshape(batch, n_vars, n_patches, width)


@dataclass(frozen=True)
class TTMConfig:
    """What a TTM is built from: patch_len --input_token_len, context_len --seq_len, patches_per_call
    --ttm_patches, ap_levels --AP_levels, stochastic --draft_stochastic; the other fields are the flags of their
    names. Refuses sizes a TTM cannot have with a ValueError naming the flag."""
    patch_len: int
    context_len: int
    patches_per_call: int
    hidden_dim: int
    layers: int
    ap_levels: int
    factor: int
    mode: str
    d_mode: str
    n_vars: int
    dropout: float
    use_norm: bool
    stochastic: bool

    @classmethod
    def of(cls, flags):
        return cls(flags.input_token_len, flags.seq_len, flags.ttm_patches, flags.hidden_dim, flags.layers,
                   flags.AP_levels, flags.factor, flags.mode, flags.d_mode, flags.n_vars, flags.dropout,
                   flags.use_norm, flags.draft_stochastic)

    def __post_init__(self):
        for flag in ("mode", "d_mode"):
            if getattr(self, flag) not in MODES:
                raise ValueError(f"--{flag} '{getattr(self, flag)}' is not one of: {', '.join(MODES)}")
        if self.context_len % self.patch_len:
            raise ValueError(f"--seq_len {self.context_len} is not a multiple of --input_token_len {self.patch_len}")
        if self.patches_per_call < 1 or self.layers < 1 or self.ap_levels < 0:
            raise ValueError(f"ttm needs --ttm_patches >= 1, --layers >= 1, --AP_levels >= 0 "
                             f"(got {self.patches_per_call}, {self.layers}, {self.ap_levels})")
        if self.hidden_dim % 2**self.ap_levels:
            raise ValueError(f"--hidden_dim {self.hidden_dim} must be divisible by 2^--AP_levels = "
                             f"{2**self.ap_levels} (adaptive patching splits the features)")


class TTM(nn.Module):
    n_layers = 0  # no attention layers: nothing to cache
    can_be_stochastic = True
    one_call_forecaster = True  # its output is the K*P points after the window (its teacher's: one patch per token)
    own_flags = ("n_vars", "factor", "mode", "AP_levels", "d_mode", "layers", "hidden_dim", "ttm_patches")

    @staticmethod
    def config_from(flags):
        return TTMConfig.of(flags)

    @staticmethod
    def setting_sizes(config):
        return (f"hd{config.hidden_dim}_ly{config.layers}_ap{config.ap_levels}_fa{config.factor}_"
                f"{config.mode}_{config.d_mode}_kp{config.patches_per_call}")

    def __init__(self, config: TTMConfig):
        super().__init__()
        self.patch_len, self.context_len = config.patch_len, config.context_len
        self.patches_per_call = config.patches_per_call
        self.output_len = self.patches_per_call * self.patch_len
        self.stochastic, self.use_norm = config.stochastic, config.use_norm
        self.n_vars = config.n_vars if "mix_channel" in (config.mode, config.d_mode) else None
        n_patches, width = config.context_len // self.patch_len, config.hidden_dim
        mixer_args = (config.n_vars, config.mode == "mix_channel", config.factor, config.dropout)
        self.embedding = nn.Linear(self.patch_len, width)
        self.blocks = nn.Sequential(*[Level(k, n_patches, width, config.layers, mixer_args)
                                      for k in range(config.ap_levels, -1, -1)])
        self.decoder = mixer_layer(n_patches, width, config.n_vars, config.d_mode == "mix_channel",
                                   config.factor, config.dropout)
        self._build_heads(n_patches * width)

    def _build_heads(self, features):
        if not self.stochastic:
            self.head = nn.Linear(features, self.output_len)
            return
        self.head_mean = nn.Linear(features, self.output_len)
        self.head_logvar = nn.Linear(features, self.output_len)
        nn.init.constant_(self.head_logvar.bias, LOGVAR_BIAS_INIT)

    def forward(self, x, cache=None):
        """x [B, L, C], L = --seq_len -> Forecast of the K*P points after it, [B, K*P, C]."""
        self._check_input(x, cache)
        patches, stats = patchify(x, self.patch_len, self.use_norm)
        h = self.decoder(self.blocks(self.embedding(patches))).flatten(2)  # [B, C, N*D]
        if not self.stochastic:
            mean = self.head(h).transpose(1, 2)
            return Forecast(mean if stats is None else denormalize(mean, stats))
        return gaussian_forecast(self.head_mean(h).transpose(1, 2), self.head_logvar(h).transpose(1, 2), stats)

    def _check_input(self, x, cache):
        if cache is not None:
            raise ValueError("ttm forecasts from its window alone and takes no KV cache: "
                             "as a target use --rollout sliding (as a draft it never gets one)")
        if x.shape[1] != self.context_len:
            raise ValueError(f"ttm forecasts from windows of --seq_len {self.context_len} points, got {x.shape[1]} "
                             f"(--test_seq_len must equal --seq_len)")
        if self.n_vars is not None and x.shape[2] != self.n_vars:
            raise ValueError(f"ttm with channel mixing needs --n_vars {x.shape[2]} (the data's variables), "
                             f"got --n_vars {self.n_vars}")


Model = TTM

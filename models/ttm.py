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


class TTM(nn.Module):
    n_layers = 0  # no attention layers: nothing to cache
    can_be_stochastic = True
    one_call_forecaster = True  # its output is the K*P points after the window (its teacher's: one patch per token)
    own_flags = ("n_vars", "factor", "mode", "AP_levels", "d_mode", "layers", "hidden_dim", "ttm_patches")

    @staticmethod
    def setting_sizes(configs):
        return (f"hd{configs.hidden_dim}_ly{configs.layers}_ap{configs.AP_levels}_fa{configs.factor}_"
                f"{configs.mode}_{configs.d_mode}_kp{configs.ttm_patches}")

    def __init__(self, configs):
        super().__init__()
        check_flags(configs)
        self.patch_len, self.context_len = configs.input_token_len, configs.seq_len
        self.patches_per_call = configs.ttm_patches
        self.output_len = self.patches_per_call * self.patch_len
        self.stochastic, self.use_norm = configs.draft_stochastic, configs.use_norm
        self.n_vars = configs.n_vars if "mix_channel" in (configs.mode, configs.d_mode) else None
        n_patches, width = configs.seq_len // self.patch_len, configs.hidden_dim
        mixer_args = (configs.n_vars, configs.mode == "mix_channel", configs.factor, configs.dropout)
        self.embedding = nn.Linear(self.patch_len, width)
        self.blocks = nn.Sequential(*[Level(k, n_patches, width, configs.layers, mixer_args)
                                      for k in range(configs.AP_levels, -1, -1)])
        self.decoder = mixer_layer(n_patches, width, configs.n_vars, configs.d_mode == "mix_channel",
                                   configs.factor, configs.dropout)
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


def check_flags(configs):
    """A ValueError naming the flag for sizes a TTM cannot have."""
    for flag in ("mode", "d_mode"):
        if getattr(configs, flag) not in MODES:
            raise ValueError(f"--{flag} '{getattr(configs, flag)}' is not one of: {', '.join(MODES)}")
    if configs.seq_len % configs.input_token_len:
        raise ValueError(f"--seq_len {configs.seq_len} is not a multiple of --input_token_len {configs.input_token_len}")
    if configs.ttm_patches < 1 or configs.layers < 1 or configs.AP_levels < 0:
        raise ValueError(f"ttm needs --ttm_patches >= 1, --layers >= 1, --AP_levels >= 0 "
                         f"(got {configs.ttm_patches}, {configs.layers}, {configs.AP_levels})")
    if configs.hidden_dim % 2**configs.AP_levels:
        raise ValueError(f"--hidden_dim {configs.hidden_dim} must be divisible by 2^--AP_levels = "
                         f"{2**configs.AP_levels} (adaptive patching splits the features)")


Model = TTM

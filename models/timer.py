"""Timer (Liu et al., ICML 2024) baseline: channel-independent decoder with absolute positions (model.md 7)."""
import math

import torch
from torch import nn

from layers.attention import AttentionLayer, CausalAttention, TokenLabels
from layers.instance_norm import denormalize
from layers.patching import patchify
from layers.transformer import TimerBlock, TimerLayer
from models.output import Forecast
from models.timer_xl import TimerConfig, check_stats_on_top_of


def sinusoidal_table(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)
    return table


class Timer(nn.Module):
    """Called like Timer-XL: model(x, cache, stats) -> Forecast. Channel independence puts the variables in
    the batch ([B*C, T, D]); the KV cache still stores them time-major per sample (CausalAttention)."""
    MAX_POSITIONS = 6500
    patches_per_call = 1
    stochastic = False

    @staticmethod
    def config_from(flags):
        return TimerConfig.of(flags)

    @staticmethod
    def setting_sizes(config):
        return config.dims.tag()

    def __init__(self, config: TimerConfig):
        super().__init__()
        dims = config.dims
        self.patch_len, self.output_len = config.patch_len, config.output_len
        self.use_norm = config.use_norm
        d_model = dims.d_model
        self.embedding = nn.Linear(self.patch_len, d_model, bias=False)
        self.register_buffer("position_table", sinusoidal_table(self.MAX_POSITIONS, d_model), persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        layers = [TimerLayer(AttentionLayer(CausalAttention(config.dropout, config.flash_attention), d_model, dims.n_heads),
                             d_model, dims.d_ff, config.dropout, config.activation) for _ in range(dims.e_layers)]
        self.blocks = TimerBlock(layers, d_model)
        self.n_layers = dims.e_layers
        self.head = nn.Linear(d_model, config.output_len)

    def forward(self, x, cache=None, stats=None):
        """x [B, T*P, C]: a window, or the T new time steps on top of `cache` with their statistics
        `stats` (as Timer-XL's). One prediction per new token."""
        check_stats_on_top_of(cache, stats, self.use_norm)
        patches, stats = patchify(x, self.patch_len, self.use_norm, stats)
        batch, n_vars, n_steps, _ = patches.shape
        first_time = None if cache is None else cache.start_times(batch, x.device).repeat_interleave(n_vars)
        labels = TokenLabels.grid(1, n_steps, x.device, first_time)
        h = self.embedding(patches.flatten(0, 1))
        h = self.dropout(h + self.position_table[labels.time])
        h = self.blocks(h, labels, n_vars, cache, n_steps)
        y = self.head(h).unflatten(0, (batch, n_vars)).flatten(2).transpose(1, 2)
        return Forecast(y if stats is None else denormalize(y, stats), cache=cache)


Model = Timer

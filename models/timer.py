"""Timer (Liu et al., ICML 2024) baseline: channel-independent decoder with absolute positions (model.md 7)."""
import math

import torch
from torch import nn

from layers.attention import AttentionLayer, CausalAttention, TokenLabels
from layers.instance_norm import denormalize
from layers.patching import patchify
from layers.transformer import TimerBlock, TimerLayer


def sinusoidal_table(max_len, d_model):
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)
    return table


class Timer(nn.Module):
    MAX_POSITIONS = 6500

    def __init__(self, configs):
        super().__init__()
        self.patch_len = configs.input_token_len
        self.use_norm = configs.use_norm
        d_model = configs.d_model
        self.embedding = nn.Linear(self.patch_len, d_model, bias=False)
        self.register_buffer("position_table", sinusoidal_table(self.MAX_POSITIONS, d_model), persistent=False)
        self.dropout = nn.Dropout(configs.dropout)
        layers = [TimerLayer(AttentionLayer(CausalAttention(configs.dropout, configs.flash_attention), d_model, configs.n_heads),
                             d_model, configs.d_ff, configs.dropout, configs.activation) for _ in range(configs.e_layers)]
        self.blocks = TimerBlock(layers, d_model)
        self.head = nn.Linear(d_model, configs.output_token_len)

    def forward(self, x, x_mark=None, y_mark=None):
        patches, stats = patchify(x, self.patch_len, self.use_norm)
        batch, n_vars, n_tokens, _ = patches.shape
        h = self.embedding(patches.flatten(0, 1))  # channel independence: every variable is a sequence
        h = self.dropout(h + self.position_table[:n_tokens])
        h = self.blocks(h, TokenLabels.grid(1, n_tokens, x.device), 1)
        y = self.head(h).reshape(batch, n_vars, -1).transpose(1, 2)
        return denormalize(y, *stats) if stats else y


Model = Timer

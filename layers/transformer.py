"""Post-norm decoder layers shared by Timer-XL, its draft and the Timer baseline (model.md 3.2)."""
import torch.nn.functional as F
from torch import nn

from layers.attention import TokenLabels


class TimerLayer(nn.Module):
    """h = norm1(h + drop(attn(h))); out = norm2(h + drop(conv2(drop(act(conv1(h))))))."""

    def __init__(self, attention, d_model, d_ff, dropout, activation):
        super().__init__()
        self.attention = attention
        self.conv1 = nn.Conv1d(d_model, d_ff, kernel_size=1)
        self.conv2 = nn.Conv1d(d_ff, d_model, kernel_size=1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, h, labels: TokenLabels, n_vars, cache=None, layer_index=0):
        h = self.norm1(h + self.dropout(self.attention(h, labels, n_vars, cache, layer_index)))
        y = self.dropout(self.activation(self.conv1(h.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        return self.norm2(h + y)


class TimerBlock(nn.Module):
    """A stack of TimerLayers followed by a final LayerNorm. With a KV cache, every layer appends the
    new tokens' keys and values and the cache is extended by n_steps time steps after the last layer."""

    def __init__(self, layers, d_model):
        super().__init__()
        self.attn_layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, h, labels: TokenLabels, n_vars, cache=None, n_steps=0):
        for index, layer in enumerate(self.attn_layers):
            h = layer(h, labels, n_vars, cache, index)
        if cache is not None:
            cache.extend(n_steps)
        return self.norm(h)

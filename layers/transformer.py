"""Post-norm decoder layers shared by Timer-XL, its draft and the Timer baseline (model.md 3.2)."""
import torch.nn.functional as F
from torch import nn

from layers.attention import CallPlan, TokenLabels


class Pointwise(nn.Conv1d):
    """OpenLTM's Conv1d(kernel_size=1) over the token axis (same parameters and state-dict keys), applied to
    tokens [B, T, D] as the linear map it is: the convolution path costs a third of a verify call on a CPU."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features, kernel_size=1)

    def forward(self, h):
        return F.linear(h, self.weight.squeeze(-1), self.bias)


class TimerLayer(nn.Module):
    """h = norm1(h + drop(attn(h))); out = norm2(h + drop(conv2(drop(act(conv1(h))))))."""

    def __init__(self, attention, d_model, d_ff, dropout, activation):
        super().__init__()
        self.attention = attention
        self.conv1 = Pointwise(d_model, d_ff)
        self.conv2 = Pointwise(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, h, plan: CallPlan, cache=None, layer_index=0):
        h = self.norm1(h + self.dropout(self.attention(h, plan, cache, layer_index)))
        y = self.dropout(self.conv2(self.dropout(self.activation(self.conv1(h)))))
        return self.norm2(h + y)


class TimerBlock(nn.Module):
    """A stack of TimerLayers followed by a final LayerNorm. The masks and rotary angles of the call are
    built once (CallPlan). With a KV cache, every layer appends the new tokens' keys and values and the
    cache is extended by n_steps time steps after the last layer."""

    def __init__(self, layers, d_model):
        super().__init__()
        self.attn_layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, h, labels: TokenLabels, n_vars, cache=None, n_steps=0):
        inner = self.attn_layers[0].attention.inner_attention
        if cache is None:
            plan = inner.plan(labels, n_vars, n_steps)
        else:
            plan = inner.plan(labels, n_vars, n_steps, cache.key_steps(n_steps), cache.window)
        for index, layer in enumerate(self.attn_layers):
            h = layer(h, plan, cache, index)
        if cache is not None:
            cache.extend(n_steps)
        return self.norm(h)

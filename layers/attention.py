"""Timer-XL attention: time-index RoPE, binary variable bias, masks from token labels.

Every token carries two labels, its variable c and its time index n. Masks, bias and rotary
positions are all functions of these labels, never of the flat position, so a KV cache can hold
earlier keys with their labels and new queries attend to them unchanged (model.md 3.4-3.5).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TokenLabels:
    """Variable index and time index of each token in the flattened sequence."""
    var: torch.Tensor   # [T] long
    time: torch.Tensor  # [T] long

    @staticmethod
    def grid(n_vars, n_tokens, device, first_time=0):
        """Variable-major labels: flat index i = c * n_tokens + n."""
        var = torch.arange(n_vars, device=device).repeat_interleave(n_tokens)
        time = torch.arange(first_time, first_time + n_tokens, device=device).repeat(n_vars)
        return TokenLabels(var, time)


def blocked_mask(q: TokenLabels, k: TokenLabels, n_vars, covariate=False):
    """Boolean [Tq, Tk], True where key j is hidden from query i (model.md 3.4c)."""
    same_var = q.var[:, None] == k.var[None, :]
    not_future = k.time[None, :] <= q.time[:, None]
    if not covariate:
        return ~not_future
    target = n_vars - 1
    target_sees_covariates = (q.var[:, None] == target) & (k.var[None, :] < target)
    return ~((same_var & not_future) | target_sees_covariates)


class RotaryEmbedding(nn.Module):
    """Partial interleaved RoPE: pairs (2j, 2j+1) of the first half of each head rotate by p*theta_j."""

    def __init__(self, head_dim, base=10000.0):
        super().__init__()
        self.rotated_dims = head_dim // 2
        n_freqs = self.rotated_dims // 2
        inv_freq = base ** (-2.0 * torch.arange(n_freqs, dtype=torch.float32) / self.rotated_dims)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.register_buffer("cos_table", torch.empty(0, n_freqs), persistent=False)
        self.register_buffer("sin_table", torch.empty(0, n_freqs), persistent=False)

    def _tables(self, max_position):
        if max_position >= self.cos_table.shape[0]:
            length = max(2 * self.cos_table.shape[0], max_position + 1, 64)
            angles = torch.arange(length, device=self.inv_freq.device, dtype=torch.float32)[:, None] * self.inv_freq
            self.cos_table, self.sin_table = angles.cos(), angles.sin()
        return self.cos_table, self.sin_table

    def forward(self, u, positions):
        """u: [B, T, H, E]; positions: [T] long. Returns u with its first E/2 dims rotated."""
        cos_table, sin_table = self._tables(int(positions.max()))
        cos = cos_table[positions][None, :, None, :].to(u.dtype)
        sin = sin_table[positions][None, :, None, :].to(u.dtype)
        rotated, passed = u[..., :self.rotated_dims], u[..., self.rotated_dims:]
        even, odd = rotated[..., 0::2], rotated[..., 1::2]
        rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)
        return torch.cat((rotated, passed), dim=-1)


class BinaryVariableBias(nn.Module):
    """Per-head learned bias: W[1, h] between tokens of the same variable, W[0, h] otherwise."""

    def __init__(self, n_heads):
        super().__init__()
        self.emb = nn.Embedding(2, n_heads)

    def forward(self, q: TokenLabels, k: TokenLabels):
        same_var = (q.var[:, None] == k.var[None, :]).long()
        return self.emb(same_var).permute(2, 0, 1)  # [H, Tq, Tk]


def attend(q, k, v, additive, dropout_p, use_sdpa):
    """softmax((q.k + additive) / sqrt(E)) v for q,k,v [B, H, T, E]; additive broadcasts to the scores.

    The bias and mask enter before the 1/sqrt(E) scale, as in OpenLTM; the SDPA path passes
    additive / sqrt(E) so both paths compute the same numbers."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    if use_sdpa:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=additive * scale, dropout_p=dropout_p, scale=scale)
    scores = (q @ k.transpose(-2, -1) + additive) * scale
    probs = F.dropout(torch.softmax(scores, dim=-1), p=dropout_p, training=dropout_p > 0)
    return probs @ v


class TimeAttention(nn.Module):
    """Timer-XL inner attention: RoPE on the time index, variable bias, label-based mask."""

    def __init__(self, head_dim, n_heads, dropout, covariate=False, use_sdpa=False):
        super().__init__()
        self.rope = RotaryEmbedding(head_dim)
        self.attn_bias = BinaryVariableBias(n_heads)
        self.dropout = dropout
        self.covariate = covariate
        self.use_sdpa = use_sdpa

    def forward(self, q, k, v, q_labels: TokenLabels, k_labels: TokenLabels, n_vars):
        """q: [B, Tq, H, E]; k, v: [B, Tk, H, E]. Returns [B, Tq, H, E]."""
        q = self.rope(q, q_labels.time).transpose(1, 2)
        k = self.rope(k, k_labels.time).transpose(1, 2)
        mask = blocked_mask(q_labels, k_labels, n_vars, self.covariate)
        additive = self.attn_bias(q_labels, k_labels).to(q.dtype).masked_fill(mask, float("-inf"))
        dropout_p = self.dropout if self.training else 0.0
        return attend(q, k, v.transpose(1, 2), additive, dropout_p, self.use_sdpa).transpose(1, 2)


class CausalAttention(nn.Module):
    """Plain causal full attention over one sequence (the Timer baseline): no RoPE, no bias."""

    def __init__(self, dropout, use_sdpa=False):
        super().__init__()
        self.dropout = dropout
        self.use_sdpa = use_sdpa

    def forward(self, q, k, v, q_labels: TokenLabels, k_labels: TokenLabels, n_vars):
        future = k_labels.time[None, :] > q_labels.time[:, None]
        additive = torch.zeros(future.shape, dtype=q.dtype, device=q.device).masked_fill(future, float("-inf"))
        dropout_p = self.dropout if self.training else 0.0
        out = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), additive, dropout_p, self.use_sdpa)
        return out.transpose(1, 2)


class AttentionLayer(nn.Module):
    """Projections around an inner attention; key names follow OpenLTM."""

    def __init__(self, inner_attention, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        head_dim = d_model // n_heads
        self.inner_attention = inner_attention
        self.query_projection = nn.Linear(d_model, head_dim * n_heads)
        self.key_projection = nn.Linear(d_model, head_dim * n_heads)
        self.value_projection = nn.Linear(d_model, head_dim * n_heads)
        self.out_projection = nn.Linear(head_dim * n_heads, d_model)

    def forward(self, h, labels: TokenLabels, n_vars):
        B, T, _ = h.shape
        q = self.query_projection(h).view(B, T, self.n_heads, -1)
        k = self.key_projection(h).view(B, T, self.n_heads, -1)
        v = self.value_projection(h).view(B, T, self.n_heads, -1)
        out = self.inner_attention(q, k, v, labels, labels, n_vars)
        return self.out_projection(out.reshape(B, T, -1))

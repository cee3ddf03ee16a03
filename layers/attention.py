"""Timer-XL attention: time-index RoPE, binary variable bias, masks from token labels.

Every token carries two labels, its variable c and its time index n. Masks, bias and rotary
positions are all functions of these labels, never of the flat position, so a KV cache can hold
earlier keys with their labels and new queries attend to them unchanged (model.md 3.4-3.5).
Timer-XL lays its tokens out time-major (flat index n*C + c), the layout of the KV cache; the order
is only a convention, outputs depend on the labels alone.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TokenLabels:
    """Variable index [T] and time index of each token in a flattened sequence; the time index is
    [T] when shared by the batch, [R, T] when every row starts at its own time (a ragged cache)."""
    var: torch.Tensor
    time: torch.Tensor

    @staticmethod
    def grid(n_vars, n_steps, device, first_time=None):
        """Time-major labels of n_steps time steps of n_vars variables: flat index i = n * n_vars + c.
        first_time: None (time 0) or [R] long, each row's first time index."""
        var = torch.arange(n_vars, device=device).repeat(n_steps)
        time = torch.arange(n_steps, device=device).repeat_interleave(n_vars)
        return TokenLabels(var, time if first_time is None else first_time[:, None] + time)


def flat_positions(labels: TokenLabels, n_vars):
    """OpenLTM's RoPE position c*N + n of every token of a full window of N time steps (model.md 3.4a).
    Equals the time index n when n_vars = 1; it depends on N, so it cannot label a growing cache."""
    n_steps = labels.time.shape[-1] // n_vars
    return labels.var * n_steps + labels.time


def blocked_mask(q: TokenLabels, k: TokenLabels, n_vars, covariate=False, window=0):
    """Boolean [Tq, Tk] (or [R, Tq, Tk] for per-row times), True where key j is hidden from query i
    (model.md 3.4c). window > 0 also hides keys `window` or more time steps older than the query."""
    same_var = q.var[:, None] == k.var[None, :]
    offset = q.time[..., :, None] - k.time[..., None, :]
    not_future = offset >= 0
    if window:
        not_future = not_future & (offset < window)
    if not covariate:
        return ~not_future
    target = n_vars - 1
    target_sees_covariates = (q.var[:, None] == target) & (k.var[None, :] < target)
    return ~((same_var & not_future) | target_sees_covariates)


def additive_mask(bias, mask):
    """Bias [H, Tq, Tk] (or a scalar 0) with -inf where mask [Tq, Tk] / [R, Tq, Tk] blocks."""
    return torch.where(mask.unsqueeze(-3), float("-inf"), bias)


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

    def angles(self, positions, max_position):
        """(cos, sin) [..., T, 1, E/4] of positions [T] or [B, T] long, all <= max_position (a host int: no
        device sync); the tables grow on demand."""
        if max_position >= self.cos_table.shape[0]:
            length = max(2 * self.cos_table.shape[0], max_position + 1, 64)
            angles = torch.arange(length, device=self.inv_freq.device, dtype=torch.float32)[:, None] * self.inv_freq
            self.cos_table, self.sin_table = angles.cos(), angles.sin()
        return self.cos_table[positions].unsqueeze(-2), self.sin_table[positions].unsqueeze(-2)

    def rotate(self, u, cos, sin):
        """u: [B, T, H, E] with its first E/2 dims rotated by the angles (cos, sin) of its T positions."""
        cos, sin = cos.to(u.dtype), sin.to(u.dtype)
        rotated, passed = u[..., :self.rotated_dims], u[..., self.rotated_dims:]
        even, odd = rotated[..., 0::2], rotated[..., 1::2]
        rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)
        return torch.cat((rotated, passed), dim=-1)

    def forward(self, u, positions):
        """u: [B, T, H, E]; positions: [T] or [B, T] long. Returns u with its first E/2 dims rotated."""
        return self.rotate(u, *self.angles(positions, int(positions.max())))


class BinaryVariableBias(nn.Module):
    """Per-head learned bias: W[1, h] between tokens of the same variable, W[0, h] otherwise."""

    def __init__(self, n_heads):
        super().__init__()
        self.emb = nn.Embedding(2, n_heads)

    def forward(self, same_var):
        """same_var: [Tq, Tk] long (1 where query and key share the variable) -> [H, Tq, Tk]."""
        return self.emb(same_var).permute(2, 0, 1)


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


@dataclass
class CallPlan:
    """What every layer of one forward shares, built once per call: no layer rebuilds a mask or a RoPE table,
    and none waits for the device.
    n_vars: variables per time step; key_steps: cache slots the keys span (0 without a cache);
    blocked: [Tq, Tk] or [R, Tq, Tk], True where a key is hidden; same_var: [Tq, Tk] long, for the variable
    bias (None without one); rotation: (cos, sin) of the new tokens' positions (None without RoPE)."""
    n_vars: int
    key_steps: int
    blocked: torch.Tensor
    same_var: torch.Tensor = None
    rotation: tuple = None


class TimeAttention(nn.Module):
    """Timer-XL inner attention over all variables jointly: RoPE on the time index, variable bias,
    label-based mask. Tokens are time-major [B, T*C, H, E], which views the cache layout directly."""

    def __init__(self, head_dim, n_heads, dropout, covariate=False, use_sdpa=False, flat_positions=False):
        super().__init__()
        self.rope = RotaryEmbedding(head_dim)
        self.flat_rope = flat_positions
        self.attn_bias = BinaryVariableBias(n_heads)
        self.dropout = dropout
        self.covariate = covariate
        self.use_sdpa = use_sdpa

    def plan(self, labels: TokenLabels, n_vars, n_steps, key_steps=0, window=0):
        """The CallPlan of n_steps new time steps labelled `labels`, on top of key_steps cached ones (a host int)."""
        keys = labels if not key_steps else TokenLabels.grid(n_vars, key_steps, labels.var.device)
        if self.flat_rope:
            positions, last = flat_positions(labels, n_vars), n_vars * n_steps - 1
        else:
            positions, last = labels.time, (key_steps or n_steps) - 1
        return CallPlan(n_vars, key_steps, blocked_mask(labels, keys, n_vars, self.covariate, window),
                        (labels.var[:, None] == keys.var[None, :]).long(), self.rope.angles(positions, last))

    def rotate(self, q, k, plan: CallPlan):
        return self.rope.rotate(q, *plan.rotation), self.rope.rotate(k, *plan.rotation)

    @staticmethod
    def to_cache(t, n_vars):
        """[B, T*C, H, E] -> [B, T, C, H, E]."""
        return t.unflatten(1, (-1, n_vars))

    @staticmethod
    def from_cache(t):
        return t.flatten(1, 2)

    def forward(self, q, k, v, plan: CallPlan):
        """q: [B, Tq, H, E] (positions applied); k, v: [B, Tk, H, E]. Returns [B, Tq, H, E]."""
        additive = additive_mask(self.attn_bias(plan.same_var).to(q.dtype), plan.blocked)
        dropout_p = self.dropout if self.training else 0.0
        out = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), additive, dropout_p, self.use_sdpa)
        return out.transpose(1, 2)


class CausalAttention(nn.Module):
    """Plain causal full attention over one variable's sequence (the Timer baseline): no RoPE, no
    bias. Channel independence puts the variables in the batch: tokens [B*C, T, H, E]."""

    def __init__(self, dropout, use_sdpa=False):
        super().__init__()
        self.dropout = dropout
        self.use_sdpa = use_sdpa

    @staticmethod
    def plan(labels: TokenLabels, n_vars, n_steps, key_steps=0, window=0):
        keys = labels if not key_steps else TokenLabels.grid(1, key_steps, labels.var.device)
        return CallPlan(n_vars, key_steps, blocked_mask(labels, keys, 1, window=window))

    @staticmethod
    def rotate(q, k, plan: CallPlan):
        return q, k

    @staticmethod
    def to_cache(t, n_vars):
        """[B*C, T, H, E] -> [B, T, C, H, E]."""
        return t.unflatten(0, (-1, n_vars)).transpose(1, 2)

    @staticmethod
    def from_cache(t):
        return t.transpose(1, 2).flatten(0, 1)

    def forward(self, q, k, v, plan: CallPlan):
        additive = additive_mask(torch.zeros((), dtype=q.dtype, device=q.device), plan.blocked)
        dropout_p = self.dropout if self.training else 0.0
        out = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), additive, dropout_p, self.use_sdpa)
        return out.transpose(1, 2)


class AttentionLayer(nn.Module):
    """Projections around an inner attention; key names follow OpenLTM. With a KV cache the new keys
    (positions applied) and values are stored and the queries attend to every cached key."""

    def __init__(self, inner_attention, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        head_dim = d_model // n_heads
        self.inner_attention = inner_attention
        self.query_projection = nn.Linear(d_model, head_dim * n_heads)
        self.key_projection = nn.Linear(d_model, head_dim * n_heads)
        self.value_projection = nn.Linear(d_model, head_dim * n_heads)
        self.out_projection = nn.Linear(head_dim * n_heads, d_model)

    def forward(self, h, plan: CallPlan, cache=None, layer_index=0):
        B, T, _ = h.shape
        inner = self.inner_attention
        q = self.query_projection(h).view(B, T, self.n_heads, -1)
        k = self.key_projection(h).view(B, T, self.n_heads, -1)
        v = self.value_projection(h).view(B, T, self.n_heads, -1)
        q, k = inner.rotate(q, k, plan)
        if cache is not None:
            k_all, v_all = cache.update(layer_index, inner.to_cache(k, plan.n_vars), inner.to_cache(v, plan.n_vars),
                                        plan.key_steps)
            k, v = inner.from_cache(k_all), inner.from_cache(v_all)
        out = inner(q, k, v, plan)
        return self.out_projection(out.reshape(B, T, -1))

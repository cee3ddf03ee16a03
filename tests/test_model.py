"""Model tests (model.md section 8): shapes, sizes and keys, causality, masks, RoPE, SDPA, instance norm.

Everything runs on tiny CPU models (d_model <= 32, a handful of tokens). The large configurations of
section 5 are only built and counted, never run.
"""
import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from conftest import make_args, tiny_model
from layers.attention import RotaryEmbedding, TokenLabels, blocked_mask, flat_positions
from layers.instance_norm import instance_stats, normalize
from layers.kv_cache import KVCache
from models import config_of, model_from_flags, model_class
from models.timer_xl import Dims
from models.timer_xl_draft import draft_dims

P, O, N, C = 4, 6, 4, 3          # patch length, output length (O != P exposes layout mix-ups), tokens, variables
L = N * P
TINY = dict(d_model=32, n_heads=2, d_ff=48, e_layers=2, input_token_len=P, output_token_len=O)
UNIT_FACTORS = dict(draft_scale_d_model=1.0, draft_scale_n_heads=1.0, draft_scale_d_ff=1.0, draft_scale_e_layers=1.0)
VARIANTS = {  # id -> (--model, extra flags)
    'timer_xl': ('timer_xl', {}),
    'draft': ('timer_xl_draft', {}),
    'draft_stochastic': ('timer_xl_draft', {'draft_stochastic': True}),
    'timer': ('timer', {}),
    'timer_draft': ('timer_draft', {}),
}


# ---- helpers ----------------------------------------------------------------------------------------

tiny = partial(tiny_model, **TINY)  # (name='timer_xl', seed=0, **overrides): eval mode, no dropout


def variant(key, **overrides):
    name, extra = VARIANTS[key]
    return tiny(name, **extra, **overrides)


def twin(model, name='timer_xl', **overrides):
    """A second model built with other flags, carrying the same weights as `model`."""
    other = tiny(name, seed=1, **overrides)
    other.load_state_dict(model.state_dict())
    return other


def series(n_vars=C, batch=2, length=L, seed=1):
    return torch.randn(batch, length, n_vars, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def outputs(model, *inputs):
    """Forward pass as a tuple: (y,) for a point model, (mean, logvar) for a stochastic one."""
    out = model(*inputs)
    return (out.mean,) if out.logvar is None else (out.mean, out.logvar)


def max_diff(a, b):
    return (a - b).abs().max().item()


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def full_size(name, **overrides):
    """A model at P = O = 96 (section 5), weights left as initialised on the CPU."""
    return model_from_flags(name, make_args(model=name, input_token_len=96, output_token_len=96, **overrides))


# ---- 1. shapes --------------------------------------------------------------------------------------

@pytest.mark.parametrize('n_vars', [1, C])
@pytest.mark.parametrize('key', VARIANTS)
def test_output_shapes(key, n_vars):
    model = variant(key)
    x = series(n_vars)
    out = outputs(model, x)
    assert len(out) == (2 if key == 'draft_stochastic' else 1)
    for y in out:
        assert y.shape == (2, N * O, n_vars) and y.dtype == torch.float32
    assert model(x).cache is None


# ---- 2. parameter counts, state-dict keys, draft sizes, stochastic head ------------------------------

@pytest.mark.parametrize('name, d_model, n_heads, d_ff, e_layers, extra, expected', [
    ('timer_xl', 1024, 8, 2048, 1, {}, 8_599_664),
    ('timer_xl', 1024, 8, 2048, 8, {}, 67_398_880),
    ('timer_xl', 512, 8, 2048, 5, {}, 15_861_936),
    ('timer_xl', 256, 2, 512, 1, {}, 577_124),
    ('timer_xl_draft', 1024, 8, 2048, 1, {}, 577_124),
    ('timer_xl_draft', 1024, 8, 2048, 1, {'draft_stochastic': True}, 601_796),
    ('timer', 1024, 8, 2048, 1, {}, 8_598_624),      # Timer-XL's 8,599,664 without embedding bias and variable bias
    ('timer_draft', 1024, 8, 2048, 1, {}, 576_864),  # the same at 256/2/512/1 (the 0.25x rules)
])
def test_parameter_counts(name, d_model, n_heads, d_ff, e_layers, extra, expected):
    model = full_size(name, d_model=d_model, n_heads=n_heads, d_ff=d_ff, e_layers=e_layers, **extra)
    assert n_params(model) == expected


def test_draft_logs_its_sizes(capsys):
    full_size('timer_xl_draft', d_model=1024, n_heads=8, d_ff=2048, e_layers=1)
    assert 'draft dims: d_model 256, n_heads 2, d_ff 512, e_layers 1 (from 1024/8/2048/1)' in capsys.readouterr().out


LAYER_KEYS = ([f'attention.{p}_projection.{w}' for p in ('query', 'key', 'value', 'out') for w in ('weight', 'bias')]
              + ['attention.inner_attention.attn_bias.emb.weight']
              + [f'{m}.{w}' for m in ('conv1', 'conv2', 'norm1', 'norm2') for w in ('weight', 'bias')])
PLAIN_HEAD = ['head.weight', 'head.bias']
STOCHASTIC_HEAD = ['head_mean.weight', 'head_mean.bias', 'head_logvar.weight', 'head_logvar.bias']


def expected_keys(n_layers, head_keys):
    layers = [f'blocks.attn_layers.{i}.{k}' for i in range(n_layers) for k in LAYER_KEYS]
    return sorted(['embedding.weight', 'embedding.bias', *layers, 'blocks.norm.weight', 'blocks.norm.bias', *head_keys])


@pytest.mark.parametrize('name, e_layers, extra, head_keys', [
    ('timer_xl', 1, {}, PLAIN_HEAD),
    ('timer_xl', 2, {}, PLAIN_HEAD),
    ('timer_xl', 1, {'covariate': True, 'flash_attention': True, 'use_norm': True}, PLAIN_HEAD),
    ('timer_xl_draft', 2, UNIT_FACTORS, PLAIN_HEAD),
    ('timer_xl_draft', 1, {'draft_stochastic': True}, STOCHASTIC_HEAD),
])
def test_state_dict_keys(name, e_layers, extra, head_keys):
    keys = sorted(tiny(name, **{**extra, 'e_layers': e_layers}).state_dict())
    assert len(LAYER_KEYS) == 17
    assert keys == expected_keys(e_layers, head_keys)
    if name == 'timer_xl' and e_layers == 1:
        assert len(keys) == 23


def test_state_dict_shapes():
    d_model, n_heads, d_ff = 32, 2, 48
    shapes = {k: tuple(v.shape) for k, v in tiny(e_layers=1).state_dict().items()}
    layer = 'blocks.attn_layers.0.'
    expected = {'embedding.weight': (d_model, P), 'embedding.bias': (d_model,),
                layer + 'attention.query_projection.weight': (d_model, d_model),
                layer + 'attention.out_projection.bias': (d_model,),
                layer + 'attention.inner_attention.attn_bias.emb.weight': (2, n_heads),
                layer + 'conv1.weight': (d_ff, d_model, 1), layer + 'conv1.bias': (d_ff,),
                layer + 'conv2.weight': (d_model, d_ff, 1), layer + 'norm2.bias': (d_model,),
                'blocks.norm.weight': (d_model,), 'head.weight': (O, d_model), 'head.bias': (O,)}
    assert {k: shapes[k] for k in expected} == expected


@pytest.mark.parametrize('key', VARIANTS)
def test_no_persistent_buffers(key):
    model = variant(key)
    assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}


@pytest.mark.parametrize('target, s, draft', [
    ((1024, 8, 2048, 1), 0.25, (256, 2, 512, 1)),
    ((1024, 8, 2048, 8), 0.25, (256, 2, 512, 2)),
    ((1024, 8, 2048, 1), 0.01, (12, 1, 20, 1)),
    ((1024, 8, 2048, 1), 0.1, (104, 1, 205, 1)),
    ((1024, 8, 2048, 1), 0.5, (512, 4, 1024, 1)),
    ((512, 8, 2048, 5), 0.25, (128, 2, 512, 1)),
    ((1024, 8, 2048, 10), 0.25, (256, 2, 512, 2)),
])
def test_draft_dims_worked_examples(target, s, draft):
    d_model, n_heads, d_ff, e_layers = target
    args = make_args(d_model=d_model, n_heads=n_heads, d_ff=d_ff, e_layers=e_layers, draft_scale_d_model=s,
                     draft_scale_n_heads=s, draft_scale_d_ff=s, draft_scale_e_layers=s)
    assert draft_dims(args) == Dims(*draft)


SWEEP_FACTORS = [0.01, 0.05, 0.1, 0.13, 0.25, 0.33, 0.5, 0.61, 0.75, 1.0, 1.37]


@pytest.mark.parametrize('target', [(1024, 8, 2048, 8), (512, 8, 2048, 5), (96, 3, 100, 3), (60, 12, 16, 1)])
def test_draft_head_dim_is_multiple_of_4(target):
    d_model, n_heads, d_ff, e_layers = target
    args = make_args(d_model=d_model, n_heads=n_heads, d_ff=d_ff, e_layers=e_layers)
    for s_d, s_h in itertools.product(SWEEP_FACTORS, repeat=2):
        args.draft_scale_d_model = args.draft_scale_d_ff = s_d
        args.draft_scale_n_heads = args.draft_scale_e_layers = s_h
        dims = draft_dims(args)
        step, wanted = 4 * dims.n_heads, round(s_d * d_model)
        assert dims.n_heads >= 1 and dims.d_ff >= 16 and dims.e_layers >= 1, (s_d, s_h, dims)
        assert dims.d_model % dims.n_heads == 0 and (dims.d_model // dims.n_heads) % 4 == 0, (s_d, s_h, dims)
        assert dims.d_model == step if wanted <= step else abs(dims.d_model - wanted) <= step / 2, (s_d, s_h, dims)
        dims.check(4)


@pytest.mark.parametrize('flags', [{}, {'use_norm': True, 'covariate': True}])
def test_draft_with_unit_factors_is_timer_xl(flags):
    base = tiny('timer_xl', **flags)
    draft = tiny('timer_xl_draft', seed=1, **UNIT_FACTORS, **flags)
    assert draft.dims == Dims(TINY['d_model'], TINY['n_heads'], TINY['d_ff'], TINY['e_layers'])
    assert list(draft.state_dict()) == list(base.state_dict())
    x = series()
    assert max_diff(outputs(draft, x)[0], outputs(base, x)[0]) > 1e-3  # different weights differ ...
    draft.load_state_dict(base.state_dict())
    assert torch.equal(outputs(draft, x)[0], outputs(base, x)[0])  # ... the same weights agree exactly


def window_sigma(x):
    return torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + 1e-5)


def test_logvar_bias_initialised_to_minus_2():
    model = variant('draft_stochastic')
    assert torch.equal(model.head_logvar.bias, torch.full((O,), -2.0))
    assert not torch.equal(model.head_mean.bias, torch.full((O,), -2.0))  # default init elsewhere


@pytest.mark.parametrize('use_norm', [False, True])
@pytest.mark.parametrize('bias, bound', [(1e4, 10.0), (-1e4, -10.0)])
def test_logvar_clamped_in_normalised_space(bias, bound, use_norm):
    model = variant('draft_stochastic', use_norm=use_norm)
    with torch.no_grad():
        model.head_logvar.bias.fill_(bias)
    x = 5 * series() + 3
    _, logvar = outputs(model, x)
    shift = 2 * torch.log(window_sigma(x)) if use_norm else torch.zeros(1)
    torch.testing.assert_close(logvar, (bound + shift).expand_as(logvar), rtol=0, atol=1e-5)


def test_stochastic_denormalisation():
    plain = variant('draft_stochastic')
    normed = twin(plain, 'timer_xl_draft', draft_stochastic=True, use_norm=True)
    x = series() * torch.tensor([0.3, 2.0, 6.0]) + torch.tensor([-4.0, 0.0, 9.0])
    mu, sigma = x.mean(dim=1, keepdim=True), window_sigma(x)
    mean_n, logvar_n = outputs(plain, (x - mu) / sigma)
    mean, logvar = outputs(normed, x)
    torch.testing.assert_close(mean, mean_n * sigma + mu, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(logvar, logvar_n + 2 * torch.log(sigma), rtol=1e-5, atol=1e-4)


# ---- validity checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize('key', VARIANTS)
def test_length_not_multiple_of_patch_raises(key):
    with pytest.raises(ValueError, match=rf'\b{L + 1}\b.*\b{P}\b'):
        variant(key)(series(length=L + 1))


def test_unknown_model_name_lists_valid_keys():
    with pytest.raises(ValueError) as error:
        model_from_flags('no_such_model', make_args())
    assert all(key in str(error.value) for key in ['no_such_model', 'timer', 'timer_draft', 'timer_xl', 'timer_xl_draft', 'ttm'])


# ---- 3. causality ------------------------------------------------------------------------------------

@pytest.mark.parametrize('n', range(N - 1))
@pytest.mark.parametrize('key, flags', [('timer_xl', {}), ('timer_xl', {'flash_attention': True}),
                                        ('draft_stochastic', {}), ('timer', {}), ('timer_draft', {})])
def test_causality(key, flags, n):
    """Perturbing times >= (n+1)P leaves rows < (n+1)O (tokens <= n) unchanged and changes later rows."""
    model = variant(key, **flags)
    x = series()
    perturbed = x.clone()
    perturbed[:, (n + 1) * P:] += series(seed=2)[:, (n + 1) * P:]
    seen = (n + 1) * O
    for y, y_perturbed in zip(outputs(model, x), outputs(model, perturbed)):
        torch.testing.assert_close(y_perturbed[:, :seen], y[:, :seen], rtol=0, atol=1e-6)
        later_change = (y_perturbed[:, seen:] - y[:, seen:]).abs().amax(dim=(0, 1))
        assert (later_change > 1e-4).all(), later_change  # every variable's later tokens react


# ---- 4. covariate mask -------------------------------------------------------------------------------

def test_covariate_mask_in_model():
    model = tiny(covariate=True)
    x = series()
    y = outputs(model, x)[0]
    later_covariate = x.clone()
    later_covariate[:, -P:, 0] += 1.0               # covariate 0, last patch only
    y_cov = outputs(model, later_covariate)[0]
    assert max_diff(y_cov[:, :O, -1], y[:, :O, -1]) > 1e-4     # target token 0 sees the later covariate
    torch.testing.assert_close(y_cov[:, :, 1], y[:, :, 1], rtol=0, atol=1e-6)  # other covariate blind to it
    torch.testing.assert_close(y_cov[:, :-O, 0], y[:, :-O, 0], rtol=0, atol=1e-6)  # covariate 0: own past only
    new_target = x.clone()
    new_target[..., -1] += series(seed=3)[..., -1]
    y_target = outputs(model, new_target)[0]
    torch.testing.assert_close(y_target[..., :-1], y[..., :-1], rtol=0, atol=1e-6)
    assert max_diff(y_target[..., -1], y[..., -1]) > 1e-4


def kron_mask(n_vars, n_tokens, covariate):
    """Section 3.4c's construction, True = blocked."""
    if not covariate:
        return torch.kron(torch.ones(n_vars, n_vars), torch.triu(torch.ones(n_tokens, n_tokens), diagonal=1)).bool()
    mask = ~torch.kron(torch.eye(n_vars), torch.tril(torch.ones(n_tokens, n_tokens))).bool()
    mask[-n_tokens:, :-n_tokens] = False
    return mask


@pytest.mark.parametrize('covariate', [False, True])
def test_blocked_mask_matches_kron_construction(covariate):
    """The kron construction is variable-major; the model's tokens are time-major (i = n*C + c)."""
    labels = TokenLabels.grid(C, N, 'cpu')
    to_variable_major = torch.arange(N * C).reshape(N, C).T.flatten()
    mask = blocked_mask(labels, labels, C, covariate)[to_variable_major][:, to_variable_major]
    assert torch.equal(mask, kron_mask(C, N, covariate))
    assert not mask.diagonal().any()


# ---- 5. RoPE -----------------------------------------------------------------------------------------

def test_rope_hand_computed_e8():
    """E = 8: dims 0-3 rotate as pairs (0,1) at theta_0 = 1 and (2,3) at theta_1 = 10000^(-2/4) = 0.01."""
    rope = RotaryEmbedding(8)
    torch.testing.assert_close(rope.inv_freq, torch.tensor([1.0, 0.01]))
    u = torch.arange(1.0, 9.0)
    positions = [0, 3, 200]  # 200 forces the cos/sin tables to grow
    out = rope(u.expand(1, len(positions), 1, 8), torch.tensor(positions))
    for row, p in zip(out[0, :, 0], positions):
        c0, s0, c1, s1 = math.cos(p), math.sin(p), math.cos(0.01 * p), math.sin(0.01 * p)
        expected = torch.tensor([1 * c0 - 2 * s0, 2 * c0 + 1 * s0, 3 * c1 - 4 * s1, 4 * c1 + 3 * s1, 5, 6, 7, 8])
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-5)
    assert rope.state_dict() == {}


def test_rope_scores_depend_only_on_offset():
    head_dim, positions = 16, torch.arange(8)
    rope = RotaryEmbedding(head_dim)
    q, k = torch.randn(2, head_dim, generator=torch.Generator().manual_seed(0))

    def scores(shift):
        rotated_q = rope(q.expand(1, len(positions), 1, head_dim), positions + shift)[0, :, 0]
        rotated_k = rope(k.expand(1, len(positions), 1, head_dim), positions + shift)[0, :, 0]
        return rotated_q @ rotated_k.T  # [n_q, n_k]

    base = scores(0)
    torch.testing.assert_close(scores(37), base, rtol=0, atol=2e-4)
    torch.testing.assert_close(base[1:, 1:], base[:-1, :-1], rtol=0, atol=1e-4)  # constant along n_q - n_k
    assert abs(base[0, 0] - base[1, 0]) > 1e-3  # but it does depend on the offset


def rope_reference(u, positions):
    """Section 3.4a written out pair by pair. u: [B, T, H, E]."""
    rotated = u.shape[-1] // 2
    out = u.clone()
    for j in range(rotated // 2):
        angle = positions.double() * 10000.0 ** (-2 * j / rotated)
        cos, sin = angle.cos().float()[None, :, None], angle.sin().float()[None, :, None]
        out[..., 2 * j] = u[..., 2 * j] * cos - u[..., 2 * j + 1] * sin
        out[..., 2 * j + 1] = u[..., 2 * j + 1] * cos + u[..., 2 * j] * sin
    return out


@torch.no_grad()
def reference_forward(model, x, flat_positions):
    """Timer-XL from section 3 (multivariate mask, no use_norm) with the model's weights.

    flat_positions=True rotates by OpenLTM's flat index c*N + n instead of the time index n."""
    batch, length, n_vars = x.shape
    n_tokens, n_heads = length // P, TINY['n_heads']
    var = torch.arange(n_vars).repeat_interleave(n_tokens)
    positions = torch.arange(n_vars * n_tokens) if flat_positions else torch.arange(n_tokens).repeat(n_vars)
    blocked = kron_mask(n_vars, n_tokens, covariate=False)
    h = model.embedding(x.transpose(1, 2).reshape(batch, n_vars, n_tokens, P)).flatten(1, 2)
    for layer in model.blocks.attn_layers:
        attn = layer.attention
        q, k, v = (proj(h).unflatten(-1, (n_heads, -1))
                   for proj in (attn.query_projection, attn.key_projection, attn.value_projection))
        bias = attn.inner_attention.attn_bias.emb.weight[(var[:, None] == var[None, :]).long()].permute(2, 0, 1)
        scores = torch.einsum('bihe,bjhe->bhij', rope_reference(q, positions), rope_reference(k, positions)) + bias
        probs = torch.softmax(scores.masked_fill(blocked, float('-inf')) / math.sqrt(q.shape[-1]), dim=-1)
        h = layer.norm1(h + attn.out_projection(torch.einsum('bhij,bjhe->bihe', probs, v).flatten(2)))
        ffn = torch.relu(F.conv1d(h.transpose(1, 2), layer.conv1.weight, layer.conv1.bias))  # OpenLTM's Conv1d path
        h = layer.norm2(h + F.conv1d(ffn, layer.conv2.weight, layer.conv2.bias).transpose(1, 2))
    return model.head(model.blocks.norm(h)).reshape(batch, n_vars, -1).transpose(1, 2)  # variable-major tokens


@torch.no_grad()
@pytest.mark.parametrize('n_vars', [1, C])
def test_time_and_flat_rope_models_equal_their_references(n_vars):
    """--rope_position time rotates by the time index n, flat by OpenLTM's c*N + n: with the same weights each
    model equals its reference, and the two coincide for one variable only (cross-variable pairs see different
    offsets)."""
    model = tiny()
    flat_model = twin(model, rope_position='flat')
    x = series(n_vars)
    y, y_flat = outputs(model, x)[0], outputs(flat_model, x)[0]
    torch.testing.assert_close(y, reference_forward(model, x, flat_positions=False), rtol=0, atol=1e-5)
    torch.testing.assert_close(y_flat, reference_forward(model, x, flat_positions=True), rtol=0, atol=1e-5)
    if n_vars == 1:
        torch.testing.assert_close(y_flat, y, rtol=0, atol=1e-6)
    else:
        assert max_diff(y_flat, y) > 1e-3


def test_flat_and_time_positions_by_hand():
    """Time-major tokens (i = n*C + c) of C = 2, N = 3: time index n = [0,0,1,1,2,2], OpenLTM's c*N + n
    = [0,3,1,4,2,5]; rotations by those positions, written out for E = 8 (theta = 1, 0.01)."""
    labels = TokenLabels.grid(2, 3, 'cpu')
    assert labels.time.tolist() == [0, 0, 1, 1, 2, 2]
    assert flat_positions(labels, 2).tolist() == [0, 3, 1, 4, 2, 5]
    assert flat_positions(TokenLabels.grid(1, 3, 'cpu'), 1).tolist() == [0, 1, 2]  # C = 1: the same
    rope, u = RotaryEmbedding(8), torch.arange(1.0, 9.0)

    def by_hand(p):
        c0, s0, c1, s1 = math.cos(p), math.sin(p), math.cos(0.01 * p), math.sin(0.01 * p)
        return torch.tensor([c0 - 2 * s0, 2 * c0 + s0, 3 * c1 - 4 * s1, 4 * c1 + 3 * s1, 5, 6, 7, 8])

    for positions in (labels.time, flat_positions(labels, 2)):
        rotated = rope(u.expand(1, 6, 1, 8), positions)[0, :, 0]
        torch.testing.assert_close(rotated, torch.stack([by_hand(p) for p in positions.tolist()]), rtol=0, atol=1e-5)


def test_flat_rope_refuses_a_cache():
    model = tiny(rope_position='flat')
    with pytest.raises(ValueError, match='rope_position flat'):
        model(torch.randn(1, 16, 2), KVCache(model.n_layers))


# ---- 6. SDPA path ------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, flags', [('timer_xl', {}), ('timer_xl', {'covariate': True}), ('timer', {})])
def test_sdpa_matches_plain_attention(name, flags):
    plain = tiny(name, **flags)
    sdpa = twin(plain, name, flash_attention=True, **flags)
    x = series()
    assert max_diff(outputs(sdpa, x)[0], outputs(plain, x)[0]) <= 1e-5


# ---- 7. instance norm --------------------------------------------------------------------------------

@pytest.mark.parametrize('key', VARIANTS)
def test_instance_norm_equivariance(key):
    model = variant(key, use_norm=True)
    x = series()
    scale, offset = torch.tensor([0.5, 2.0, 7.0]), torch.tensor([-3.0, 0.0, 10.0])
    (y, *logvar), (y_affine, *logvar_affine) = outputs(model, x), outputs(model, scale * x + offset)
    torch.testing.assert_close(y_affine, scale * y + offset, rtol=1e-4, atol=1e-3)
    for got, before in zip(logvar_affine, logvar):  # stochastic draft: variance scales by a^2
        torch.testing.assert_close(got, before + 2 * torch.log(scale), rtol=1e-4, atol=1e-3)


def test_normalize_statistics():
    x = series().requires_grad_()
    mean, std = instance_stats(x)
    torch.testing.assert_close(std, window_sigma(x))
    torch.testing.assert_close(normalize(x, (mean, std)), (x - x.mean(1, keepdim=True)) / window_sigma(x))
    assert not mean.requires_grad and std.requires_grad  # mean detached, sigma not
    _, constant_std = instance_stats(torch.ones(1, L, 1))
    torch.testing.assert_close(constant_std, torch.full((1, 1, 1), math.sqrt(1e-5)))  # 1e-5 inside the root


# ---- Timer baseline ----------------------------------------------------------------------------------

@pytest.mark.parametrize('name, independent', [('timer', True), ('timer_xl', False)])
def test_channel_independence(name, independent):
    """Changing variable 1 leaves the others' outputs unchanged for Timer only (Timer-XL mixes variables)."""
    model = tiny(name)
    x = series()
    changed = x.clone()
    changed[..., 1] += series(seed=4)[..., 1]
    y, y_changed = outputs(model, x)[0], outputs(model, changed)[0]
    assert max_diff(y_changed[..., 1], y[..., 1]) > 1e-4
    others = max_diff(y_changed[..., [0, 2]], y[..., [0, 2]])
    assert (others <= 1e-6) if independent else (others > 1e-4), others


def test_projection_weights_are_transposed_in_memory_and_the_state_dict_is_unchanged():
    """build_model lays every projection weight out column by column (fast small-batch matmuls on a CPU):
    the same keys, shapes and values as the family's plain module, and the same outputs."""
    args = make_args(**TINY)
    torch.manual_seed(0)
    plain = model_class('timer_xl')(config_of('timer_xl', args)).eval()
    torch.manual_seed(0)
    built = model_from_flags('timer_xl', args).eval()
    plain_state, built_state = plain.state_dict(), built.state_dict()
    assert list(plain_state) == list(built_state)
    for key, value in plain_state.items():
        assert torch.equal(built_state[key], value) and built_state[key].shape == value.shape
    projections = [m.weight for m in built.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d))]
    assert projections and all(w.stride()[0] == 1 < w.stride()[1] for w in projections)
    x = series(C)
    torch.testing.assert_close(built(x).mean, plain(x).mean, rtol=0, atol=1e-6)

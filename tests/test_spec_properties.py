"""What speculative decoding guarantees, in every rollout (sliding; cached with trailing or frozen statistics) and
for every kind of draft (point or stochastic; Timer-XL draft, Timer, TTM in one call):

- σ -> 0 accepts nothing: the output is the target-only rollout, every round but the last tests one proposal;
- a draft identical to the target is always accepted, its rounds emit K + 1 patches;
- lossless acceptance emits what sampling the target emits (two-sample checks that see a 5% shift of σ);
- a batch decodes each sample as that sample alone would be decoded.

Tiny models of one width (P = 4, a window of 4 patches, 3 variables), freshly initialised.
"""
import copy
import math
from functools import partial

import pytest
import torch

from conftest import tiny_model
from helpers import BlockMap, same_distribution_failures, target_only
from models.output import is_one_call
from speculative import RolloutOptions, SpecConfig, SpeculativeDecoder
from speculative.speed_model import StepCosts

P, N_PATCHES, C = 4, 4, 3
HORIZON = 9 * P - 2  # the last patch is cut
ROLLOUTS = {'sliding': RolloutOptions('sliding'), 'cached_trailing': RolloutOptions('cached', cache_stats='trailing'),
            'cached_frozen': RolloutOptions('cached', cache_stats='frozen')}
TTM = dict(draft_stochastic=True, ttm_patches=3, hidden_dim=8, layers=1, AP_levels=1, mode='mix_channel', n_vars=C)
DRAFTS = {  # id -> (--model, flags)
    'timer_xl_draft': ('timer_xl_draft', {}),
    'timer_xl_draft_stochastic': ('timer_xl_draft', {'draft_stochastic': True}),
    'timer': ('timer', {}),
    'timer_draft': ('timer_draft', {}),
    'ttm_one_call': ('ttm', TTM),
    'ttm_one_patch': ('ttm', {**TTM, 'ttm_patches': 1}),  # one patch per call is still a one-call draft
}
K_MAX = 4  # --spec_k, at most the patches of a one-call draft

tiny = partial(tiny_model, d_model=16, n_heads=2, d_ff=24, e_layers=2, input_token_len=P, output_token_len=P,
               seq_len=N_PATCHES * P, use_norm=True)


def windows(batch, seed=1):
    return torch.randn(batch, N_PATCHES * P, C, generator=torch.Generator().manual_seed(seed))


def decoded(target, draft, x, horizon, rollout, costs=None, sample_ids=None, **config):
    """(output, decoder) of one traced generate() in `rollout` of samples 0, 1, ... (or `sample_ids`); the step
    costs are measured on x first unless given."""
    decoder = SpeculativeDecoder(target, draft, SpecConfig(patch_len=P, seed=1, **config), ROLLOUTS[rollout])
    decoder.costs = costs
    decoder.reset_counts(trace=True)
    return decoder.generate(x, horizon, range(len(x)) if sample_ids is None else sample_ids), decoder


def k_cases():
    """(rollout, draft, K) for every rollout and draft: K = 1 to 4, at most what a one-call draft forecasts per
    call, and adaptive K up to that."""
    cases = []
    for rollout in ROLLOUTS:
        for draft, (name, flags) in DRAFTS.items():
            k_max = flags.get('ttm_patches', K_MAX)
            for k in [*range(1, k_max + 1), *(['adaptive'] if k_max > 1 else [])]:
                cases.append(pytest.param(rollout, draft, k, id=f'{rollout}-{draft}-k{k}'))
    return cases


@torch.no_grad()
@pytest.mark.parametrize('rollout, draft_id, k', k_cases())
def test_tiny_sigma_accepts_nothing_and_reproduces_the_target_only_rollout(rollout, draft_id, k):
    """The draft is one layer, the target two: a draft step is cheap enough for adaptive K to propose at first."""
    name, flags = DRAFTS[draft_id]
    target, draft, x = tiny(), tiny(name, seed=4, **{'e_layers': 1, **flags}), windows(4)
    adaptive = k == 'adaptive'
    k_config = dict(k=flags.get('ttm_patches', K_MAX), adaptive=True) if adaptive else dict(k=k)
    out, decoder = decoded(target, draft, x, HORIZON, rollout, sigma=1e-6, draft_stochastic=draft.stochastic,
                           **k_config)
    torch.testing.assert_close(out, target_only(target, x, HORIZON, rollout=ROLLOUTS[rollout]), rtol=0, atol=1e-5)
    counters = decoder.counters
    assert decoder.costs.one_call == is_one_call(draft)
    assert counters.accepted == 0 < counters.attempted
    proposing_rounds = sum(counters.verify_calls_by_k[1:])
    assert counters.attempted == proposing_rounds  # each tests its first proposal only
    if not adaptive:  # only each sample's last round has no patch to propose
        assert counters.verify_calls_by_k[0] == len(x) and counters.target_calls == proposing_rounds + len(x)
    proposals = sum(k_eff * n for k_eff, n in enumerate(counters.verify_calls_by_k))
    assert counters.draft_calls == (proposing_rounds if is_one_call(draft) else proposals)


IDENTICAL = [pytest.param(rollout, False, id=f'{rollout}-stepwise') for rollout in ROLLOUTS] + [
    pytest.param('sliding', True, id='sliding-one_call')]  # a one-call draft forecasts from its sliding window


@torch.no_grad()
@pytest.mark.parametrize('rollout, one_call', IDENTICAL)
def test_a_draft_identical_to_the_target_is_always_accepted(rollout, one_call):
    """10 patches, K = 3: two rounds of 3 accepted proposals + the bonus, then one proposal + the bonus; a one-call
    draft makes one call per sample and round."""
    k, x, horizon = 3, windows(5), 10 * P - 2
    target = tiny()
    draft = BlockMap(tiny(), k) if one_call else tiny()
    out, decoder = decoded(target, draft, x, horizon, rollout, k=k, sigma=0.7)
    torch.testing.assert_close(out, target_only(target, x, horizon, rollout=ROLLOUTS[rollout]), rtol=0, atol=1e-5)
    counters = decoder.counters
    assert counters.accepted == counters.attempted == 5 * (3 + 3 + 1)
    assert counters.target_calls == 5 * math.ceil(10 / (k + 1))
    if one_call:
        assert decoder.tracer.n_draft_calls == 3 and counters.draft_calls == 5 * 3
    else:
        assert counters.draft_calls == counters.attempted


def shifted_twin(target, shift, log_var=None):
    """A draft equal to `target` with every mean shifted by `shift`: a copy of the target, or with `log_var` a
    stochastic Timer-XL draft of the target's sizes predicting that constant log-variance."""
    if log_var is None:
        draft = copy.deepcopy(target)
        draft.head.bias += shift
        return draft
    draft = tiny('timer_xl_draft', seed=1, e_layers=target.n_layers, draft_stochastic=True,
                 **{f'draft_scale_{name}': 1.0 for name in ('d_model', 'n_heads', 'd_ff', 'e_layers')})
    state = {name.replace('head.', 'head_mean.'): value for name, value in target.state_dict().items()}
    draft.load_state_dict({**draft.state_dict(), **state})
    draft.head_mean.bias += shift
    draft.head_logvar.weight.zero_()
    draft.head_logvar.bias.fill_(log_var)
    return draft


LOSSLESS = [pytest.param(rollout, stochastic, one_call, id=f"{rollout}-{'stochastic' if stochastic else 'point'}"
                         f"{'-one_call' if one_call else ''}")
            for rollout in ROLLOUTS for stochastic in (False, True) for one_call in (False, True)]


@torch.no_grad()
@pytest.mark.parametrize('rollout, stochastic, one_call', LOSSLESS)
def test_lossless_output_is_distributed_as_target_sampling(rollout, stochastic, one_call):
    """Means shifted by 0.2 and variance σ² (a point draft's proposals are drawn with σ): proposals are accepted
    about half of the time (2Φ(−0.2·√12 / 2σ) = 0.49), so both the accepted proposals and the residual draws
    make up the output. With instance norm on and trailing statistics every proposal changes the statistics of
    the steps after it."""
    sigma, n_draws, horizon = 0.5, 3000, 3 * P
    target = tiny(e_layers=1)
    draft = shifted_twin(target, 0.2, math.log(sigma ** 2) if stochastic else None)
    draft = BlockMap(draft, 2) if one_call else draft
    x = windows(1).expand(n_draws, -1, -1)
    speculative, decoder = decoded(target, draft, x, horizon, rollout, StepCosts.of(0.1, [1.0] * 3), k=2,
                                   sigma=sigma, accept_mode='lossless', draft_stochastic=stochastic)
    low, high = (0.1, 0.9) if one_call else (0.3, 0.7)  # a one-call draft forecasts from its sliding window
    assert low < decoder.counters.acceptance_pct / 100 < high
    sampled = target_only(target, x, horizon, sigma, range(n_draws, 2 * n_draws), seed=2, rollout=ROLLOUTS[rollout])
    assert same_distribution_failures(speculative, sampled) == []
    # the checks have the power to see a sampler whose mean is off by 5% of σ
    assert 'average over values' in same_distribution_failures(speculative + 0.05 * sigma, sampled)


@torch.no_grad()
@pytest.mark.parametrize('rollout', ROLLOUTS)
@pytest.mark.parametrize('mode, stochastic', [('tolerance', False), ('lossless', False), ('lossless', True),
                                              ('tolerance', True)])
def test_a_batch_decodes_each_sample_as_if_it_were_alone(rollout, mode, stochastic):
    """Samples accept different numbers of proposals and finish in different rounds, each drawing from the random
    stream of its own index."""
    target = tiny()
    draft = shifted_twin(target, 0.3, math.log(0.3) if stochastic else None)
    x, ids, horizon, costs = windows(6), [40, 41, 42, 43, 44, 45], 30, StepCosts.of(0.1, [1.0] * 4)
    settings = dict(k=3, sigma=0.8, accept_mode=mode, draft_stochastic=stochastic)
    batch, decoder = decoded(target, draft, x, horizon, rollout, costs, ids, **settings)
    assert 0 < decoder.counters.accepted < decoder.counters.attempted  # random decisions actually happen
    for i in range(len(x)):
        alone, _ = decoded(target, draft, x[i:i + 1], horizon, rollout, costs, ids[i:i + 1], **settings)
        torch.testing.assert_close(alone[0], batch[i], rtol=0, atol=1e-5)

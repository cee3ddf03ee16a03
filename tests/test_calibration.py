"""Speculation under an MSE budget (speculative/calibration.py): the bootstrap bound, the choice of σ and K
(--spec_mse_budget through run.main: tests/test_exp_speculative.py)."""
import pytest
import torch

from conftest import tiny_model
from speculative import RolloutOptions, SpecConfig, SpeculativeDecoder, TargetOnlyDecoder
from speculative import calibration as calibration_module
from speculative.calibration import ADAPTIVE, calibrate, mse_increase_with_upper_bound

P = 4


def test_the_increase_and_its_bound_in_closed_form():
    target = torch.tensor([1.0, 2.0, 4.0, 0.5] * 10, dtype=torch.float64)
    assert mse_increase_with_upper_bound(target.clone(), target) == (0.0, pytest.approx(0.0, abs=1e-9))
    increase, upper = mse_increase_with_upper_bound(1.1 * target, target)  # every resample: ratio 1.1
    assert increase == pytest.approx(10.0) and upper == pytest.approx(10.0)
    noisy = target * torch.linspace(0.8, 1.3, 40, dtype=torch.float64)
    increase, upper = mse_increase_with_upper_bound(noisy, target)
    assert increase == pytest.approx(100 * (noisy.sum() / target.sum() - 1).item()) and upper > increase + 1


def shifted_pair(shift):
    """A tiny target and a draft equal to it with every prediction shifted by `shift`."""
    sizes = dict(d_model=16, n_heads=2, d_ff=24, input_token_len=P, output_token_len=P)
    target, draft = tiny_model(**sizes), tiny_model(**sizes)
    draft.load_state_dict(target.state_dict())
    with torch.no_grad():
        draft.head.bias += shift
    return target, draft


def batches(n_batches=2, batch=4):
    gen = torch.Generator().manual_seed(3)
    return [(torch.randn(batch, 4 * P, 3, generator=gen), torch.randn(batch, 6 * P, 3, generator=gen),
             list(range(i * batch, (i + 1) * batch))) for i in range(n_batches)]


@torch.no_grad()
@pytest.mark.parametrize('budget', [0.0, 3.0, 1e6])
def test_the_fastest_setting_within_the_budget_is_chosen(monkeypatch, budget):
    """The speed model is replaced by 1 + the share of accepted proposals, so that accepting more is faster.
    A small σ accepts nothing (no increase, not faster); a large one accepts the shifted proposals."""
    monkeypatch.setattr(calibration_module, 'predicted_speedup',
                        lambda costs, counters: 1 + counters.accepted / max(counters.attempted, 1))
    target, draft = shifted_pair(0.3)
    result = calibrate(target, draft, SpecConfig(k=2, patch_len=P), RolloutOptions('cached'), batches(), 6 * P,
                       budget, [1e-4, 1.0, 100.0])
    assert [(s.sigma, s.k) for s in result.settings] == [(sigma, k) for sigma in (1e-4, 1.0, 100.0)
                                                         for k in (1, 2, ADAPTIVE)]
    by_sigma = {s.sigma: s for s in result.settings if s.k == 2}
    assert by_sigma[1e-4].acceptance_pct == 0 and by_sigma[1e-4].mse_increase_pct == pytest.approx(0, abs=1e-5)
    assert by_sigma[100.0].acceptance_pct > 90 and by_sigma[100.0].mse_increase_pct > 3
    within = [s for s in result.settings if s.mse_increase_upper_pct <= budget and s.predicted_speedup > 1]
    if not within:
        assert result.chosen is None and result.config(SpecConfig(k=2)).k == 0
    else:
        assert result.chosen.predicted_speedup == max(s.predicted_speedup for s in within)
        assert result.chosen.mse_increase_upper_pct <= budget
    assert (result.chosen is None) == (budget < 7)  # the smallest increase of an accepting setting is about 8%


@torch.no_grad()
def test_k_0_decodes_target_only_steps_without_touching_the_draft():
    """The fallback when nothing is within the budget: K = 0 is the target alone, the draft never called."""
    target, draft = shifted_pair(0.3)
    calls = []
    draft.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    decoder = SpeculativeDecoder(target, draft, SpecConfig(k=0, patch_len=P), RolloutOptions('cached'))
    (x, _, ids), = batches(1)
    out = decoder.generate(x, 6 * P, ids)
    torch.testing.assert_close(out, TargetOnlyDecoder(target, RolloutOptions('cached')).generate(x, 6 * P, ids),
                               rtol=0, atol=1e-6)
    assert calls == [] and decoder.counters.draft_calls == 0 and decoder.costs.problems == []

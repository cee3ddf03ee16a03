"""Speculation under an MSE budget (--spec_mse_budget PCT): σ and K chosen on validation windows so that the
forecast stays within PCT% of the target's own MSE, before the test.

Over a grid of σ (--spec_calib_sigmas) and K (1..--spec_k, and adaptive), the speculative decoder decodes the
calibration windows (--spec_calib_windows, spread evenly over the validation split) in the test's rollout;
the target-only decoder decodes them once. For each setting: the acceptance, the MSE increase over
target-only decoding, 100·(MSE_spec / MSE_target − 1), with the upper end of its one-sided 95% bootstrap
interval over windows (the 95th percentile of BOOTSTRAP resamples of the windows), and the speed model's
predicted speedup (speculative/speed_model.py, with the step costs measured on the calibration batches and
the setting's own counts). The choice is the setting with the largest predicted speedup whose upper bound
is within the budget; when none is, target-only decoding (K = 0). Lossless acceptance keeps the target's
distribution whatever σ, so its increase is only sampling noise; the budget is meant for tolerance.
"""
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from data_provider.data_factory import spread_loader
from speculative.engine import SpeculativeDecoder
from speculative.speed_model import predicted_speedup
from speculative.target_only import TargetOnlyDecoder
from utils.atomic import atomic_write_text
from utils.timing import clock

BOOTSTRAP = 1000
ADAPTIVE = "adaptive"


@dataclass
class Setting:
    """One grid point and what calibration measured for it (k: an int, or 'adaptive' up to --spec_k)."""
    sigma: float
    k: object
    acceptance_pct: float
    mse_increase_pct: float
    mse_increase_upper_pct: float
    predicted_speedup: float


@dataclass
class Calibration:
    budget_pct: float
    windows: int
    seconds: float
    settings: list
    chosen: Setting = None  # None: no setting within the budget, target-only decoding

    def config(self, base):
        """The SpecConfig the test decodes with: the chosen σ and K, or K = 0 (target-only steps)."""
        if self.chosen is None:
            return dataclasses.replace(base, k=0, adaptive=False)
        adaptive = self.chosen.k == ADAPTIVE
        return dataclasses.replace(base, sigma=self.chosen.sigma, k=base.k if adaptive else self.chosen.k,
                                   adaptive=adaptive)

    def save(self, path):
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=1))

    @staticmethod
    def load(path):
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
        saved["settings"] = [Setting(**s) for s in saved["settings"]]
        saved["chosen"] = None if saved["chosen"] is None else Setting(**saved["chosen"])
        return Calibration(**saved)

    def summary(self):
        """The fields the result record gets."""
        chosen = self.chosen
        fields = dict(spec_mse_budget=self.budget_pct, calib_windows=self.windows, calib_s=self.seconds,
                      chosen_sigma=chosen.sigma if chosen else float("nan"), chosen_k=chosen.k if chosen else 0)
        for name in ("acceptance_pct", "mse_increase_pct", "mse_increase_upper_pct", "predicted_speedup"):
            fields[f"calib_{name}"] = getattr(chosen, name) if chosen else float("nan")
        return fields


def mse_increase_with_upper_bound(spec_sq_err, target_sq_err, seed=0):
    """spec_sq_err, target_sq_err [W]: each window's summed squared error. The MSE increase in % and the upper
    end of its one-sided 95% bootstrap interval over the windows."""
    resamples = torch.randint(len(spec_sq_err), (BOOTSTRAP, len(spec_sq_err)),
                              generator=torch.Generator().manual_seed(seed))
    ratios = spec_sq_err[resamples].sum(1) / target_sq_err[resamples].sum(1)
    increase = 100 * (spec_sq_err.sum() / target_sq_err.sum() - 1)
    return increase.item(), 100 * (torch.quantile(ratios, 0.95).item() - 1)


def grid(sigmas, k_max):
    return [(sigma, k) for sigma in sigmas for k in [*range(1, k_max + 1), ADAPTIVE]]


def calibrate(target, draft, base, rollout, batches, horizon, budget_pct, sigmas):
    """batches: (x [B, L, C], truth [B, horizon, C], sample ids) of the calibration windows. Returns the
    Calibration of every (σ, K) of the grid and the fastest setting within the budget."""
    settings, seconds = measure_settings(target, draft, base, rollout, batches, horizon, sigmas)
    return Calibration(budget_pct, sum(len(x) for x, _, _ in batches), seconds, settings,
                       choose(settings, budget_pct))


def choose(settings, budget_pct):
    """The setting with the largest predicted speedup (above 1) whose upper bound is within the budget; None if
    there is none."""
    within = [s for s in settings if s.mse_increase_upper_pct <= budget_pct and s.predicted_speedup > 1]
    return max(within, key=lambda s: s.predicted_speedup, default=None)


@torch.no_grad()
def measure_settings(target, draft, base, rollout, batches, horizon, sigmas):
    """The Setting of every (σ, K) of the grid on the calibration batches, and the seconds it took."""
    start = clock()
    target_err = _squared_errors(TargetOnlyDecoder(target, rollout), batches, horizon)
    meter = SpeculativeDecoder(target, draft, base, rollout)
    meter.sample_costs(batches[0][0], horizon, repeats=3)
    for x, _, _ in batches[1:]:  # one more repeat per batch: costs spread over the calibration
        meter.sample_costs(x, horizon)
    settings = []
    for sigma, k in grid(sigmas, base.k):
        config = dataclasses.replace(base, sigma=sigma, k=base.k if k == ADAPTIVE else k, adaptive=k == ADAPTIVE)
        decoder = SpeculativeDecoder(target, draft, config, rollout)
        decoder.costs = meter.costs
        spec_err = _squared_errors(decoder, batches, horizon)
        increase, upper = mse_increase_with_upper_bound(spec_err, target_err)
        settings.append(Setting(sigma, k, decoder.counters.acceptance_pct, increase, upper,
                                predicted_speedup(meter.costs, decoder.counters)))
    return settings, clock() - start


def calibration_batches(args, device):
    """(x, truth [B, --test_pred_len, C], sample ids) of --spec_calib_windows validation windows of the test's
    length and horizon, spread evenly over the split, in batches of --batch_size."""
    batches, first = [], 0
    for x, y, _, _ in spread_loader(args, "val", args.spec_calib_windows):
        batches.append((x.float().to(device), y.float()[:, -args.test_pred_len:], list(range(first, first + len(x)))))
        first += len(x)
    return batches


def _squared_errors(decoder, batches, horizon):
    """Each window's summed squared error [W] of the decoder's forecasts."""
    errors = [(decoder.generate(x, horizon, ids).cpu().double() - truth.double()).square().flatten(1).sum(1)
              for x, truth, ids in batches]
    return torch.cat(errors)

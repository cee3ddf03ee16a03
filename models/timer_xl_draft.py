"""Draft model: Timer-XL with scaled sizes and an optional stochastic head (model.md section 6)."""
import torch
from torch import nn

from layers.instance_norm import denormalize
from models.output import Forecast
from models.timer_xl import Dims, TimerXL


def nearest_multiple(target, step):
    """Positive multiple of step nearest to target (at least step); ties go to the larger one."""
    lower = max(step, (target // step) * step)
    upper = lower if target <= lower else lower + step
    return upper if upper - target <= target - lower else lower


def draft_dims(configs):
    """Scale the target sizes --d_model/--n_heads/--d_ff/--e_layers by the --draft_scale_* factors."""
    heads = max(1, round(configs.draft_scale_n_heads * configs.n_heads))
    width = nearest_multiple(round(configs.draft_scale_d_model * configs.d_model), 4 * heads)
    ffn = max(16, round(configs.draft_scale_d_ff * configs.d_ff))
    layers = max(1, round(configs.draft_scale_e_layers * configs.e_layers))
    return Dims(width, heads, ffn, layers)


class TimerXLDraft(TimerXL):
    LOGVAR_MIN, LOGVAR_MAX, LOGVAR_BIAS_INIT = -10.0, 10.0, -2.0

    def __init__(self, configs):
        self.stochastic = configs.draft_stochastic
        dims = draft_dims(configs)
        super().__init__(configs, dims)
        n_params = sum(p.numel() for p in self.parameters())
        print(f"draft dims: d_model {dims.d_model}, n_heads {dims.n_heads}, d_ff {dims.d_ff}, "
              f"e_layers {dims.e_layers} (from {configs.d_model}/{configs.n_heads}/{configs.d_ff}/{configs.e_layers}); "
              f"{n_params:,} parameters{' (stochastic)' if self.stochastic else ''}")

    def _build_head(self, d_model):
        if not self.stochastic:
            return super()._build_head(d_model)
        self.head_mean = nn.Linear(d_model, self.output_len)
        self.head_logvar = nn.Linear(d_model, self.output_len)
        nn.init.constant_(self.head_logvar.bias, self.LOGVAR_BIAS_INIT)

    def _readout(self, h, n_vars, stats, cache):
        if not self.stochastic:
            return super()._readout(h, n_vars, stats, cache)
        mean = self._to_series(self.head_mean(h), n_vars)
        logvar = self._to_series(self.head_logvar(h).clamp(self.LOGVAR_MIN, self.LOGVAR_MAX), n_vars)
        if stats is not None:
            mean, logvar = denormalize(mean, stats), logvar + 2 * torch.log(stats[1])
        return Forecast(mean, logvar, cache)


Model = TimerXLDraft

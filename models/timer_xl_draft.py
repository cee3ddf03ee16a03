"""Draft model: Timer-XL with scaled sizes and an optional stochastic head (model.md section 6)."""
from torch import nn

from models.output import LOGVAR_BIAS_INIT, gaussian_forecast
from models.timer_xl import Dims, TimerXL, TimerXLConfig


def nearest_multiple(target, step):
    """Positive multiple of step nearest to target (at least step); ties go to the larger one."""
    lower = max(step, (target // step) * step)
    upper = lower if target <= lower else lower + step
    return upper if upper - target <= target - lower else lower


def draft_dims(flags):
    """Scale the target sizes --d_model/--n_heads/--d_ff/--e_layers by the --draft_scale_* factors."""
    heads = max(1, round(flags.draft_scale_n_heads * flags.n_heads))
    width = nearest_multiple(round(flags.draft_scale_d_model * flags.d_model), 4 * heads)
    ffn = max(16, round(flags.draft_scale_d_ff * flags.d_ff))
    layers = max(1, round(flags.draft_scale_e_layers * flags.e_layers))
    return Dims(width, heads, ffn, layers)


def scaled_sizes(flags):
    """The fields a draft's configuration has in place of its target's: the scaled sizes, and the sizes they scale
    (which only the target must be able to have)."""
    return {"dims": draft_dims(flags), "scaled_from": Dims.of(flags)}


class TimerXLDraft(TimerXL):
    scaled_by_draft_flags = can_be_stochastic = True

    @staticmethod
    def config_from(flags):
        return TimerXLConfig.of(flags, **scaled_sizes(flags), stochastic=flags.draft_stochastic)

    def __init__(self, config: TimerXLConfig):
        self.stochastic = config.stochastic
        super().__init__(config)
        dims, target = config.dims, config.scaled_from
        n_params = sum(p.numel() for p in self.parameters())
        print(f"draft dims: d_model {dims.d_model}, n_heads {dims.n_heads}, d_ff {dims.d_ff}, "
              f"e_layers {dims.e_layers} (from {target.d_model}/{target.n_heads}/{target.d_ff}/{target.e_layers}); "
              f"{n_params:,} parameters{' (stochastic)' if self.stochastic else ''}")

    def _build_head(self, d_model):
        if not self.stochastic:
            return super()._build_head(d_model)
        self.head_mean = nn.Linear(d_model, self.output_len)
        self.head_logvar = nn.Linear(d_model, self.output_len)
        nn.init.constant_(self.head_logvar.bias, LOGVAR_BIAS_INIT)

    def _readout(self, h, n_vars, stats, cache):
        if not self.stochastic:
            return super()._readout(h, n_vars, stats, cache)
        return gaussian_forecast(self._to_series(self.head_mean(h), n_vars),
                                 self._to_series(self.head_logvar(h), n_vars), stats, cache)


Model = TimerXLDraft

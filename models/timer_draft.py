"""The Timer baseline as a draft: its sizes are the target's --d_model/--n_heads/--d_ff/--e_layers
scaled by --draft_scale_*, with the rules of timer_xl_draft (model.md 6). A point forecaster: no
stochastic head. With all factors 1.0 it is exactly a `timer` (same keys, same outputs)."""
from models.timer import Timer
from models.timer_xl import TimerConfig
from models.timer_xl_draft import scaled_sizes


class TimerDraft(Timer):
    scaled_by_draft_flags = True

    @staticmethod
    def config_from(flags):
        return TimerConfig.of(flags, **scaled_sizes(flags))


Model = TimerDraft

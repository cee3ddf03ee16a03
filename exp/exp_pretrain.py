"""Draft pretraining: the forecasting loop on any benchmark file or a folder of files (--data Utsd).

It differs from ExpForecast only in the checkpoint naming: the setting string drops the task prefix,
so scripts with --model_id draft_pretrain_<data>_<scale> write checkpoints/draft_pretrain_*."""
from exp.exp_forecast import ExpForecast


class ExpPretrain(ExpForecast):
    pass

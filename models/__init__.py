"""Model registry: --model key -> module with a Model(configs) class. Imports only what is asked for.

Every family declares patch_len, output_len, patches_per_call, stochastic, n_layers (models/output.py)
and `setting_sizes(configs)`, the sizes part of its setting string (utils/setting.py)."""
import importlib

MODEL_MODULES = {
    "timer_xl": "models.timer_xl",
    "timer_xl_draft": "models.timer_xl_draft",
    "timer": "models.timer",
    "timer_draft": "models.timer_draft",
    "ttm": "models.ttm",
}


def model_class(name):
    if name not in MODEL_MODULES:
        raise ValueError(f"unknown --model '{name}'; valid: {', '.join(MODEL_MODULES)}")
    return importlib.import_module(MODEL_MODULES[name]).Model


def build_model(name, configs):
    return model_class(name)(configs)

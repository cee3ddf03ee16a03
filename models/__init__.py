"""Model registry: --model key -> module with a Model(configs) class. Imports only what is asked for."""
import importlib

MODEL_MODULES = {
    "timer_xl": "models.timer_xl",
    "timer_xl_draft": "models.timer_xl_draft",
    "timer": "models.timer",
}


def build_model(name, configs):
    if name not in MODEL_MODULES:
        raise ValueError(f"unknown --model '{name}'; valid: {', '.join(MODEL_MODULES)}")
    return importlib.import_module(MODEL_MODULES[name]).Model(configs)

"""Model registry: every module models/<key>.py that defines `Model` is the family `--model <key>`
(and `--spec_draft_model`, `--distill_target_model <key>`), so adding a family is adding its file.

A family's Model declares patch_len, output_len, patches_per_call, stochastic, n_layers (models/output.py)
and `setting_sizes(configs)`, the sizes part of its setting string (utils/setting.py). Optional class
attributes: scaled_by_draft_flags (sizes are the --draft_scale_* scaled ones), can_be_stochastic
(--draft_stochastic adds a log-variance head), one_call_forecaster (trains on the K*P points after each
window), head_dim_multiple (d_model / n_heads must be a multiple of it), own_flags (run.py flags that only
this family reads: refused when no model of the family is built)."""
import functools
import importlib
import pkgutil

from layers.weight_layout import lay_out_projections


@functools.cache
def families():
    """The registry keys, in name order."""
    names = (info.name for info in pkgutil.iter_modules(__path__) if not info.ispkg)
    return tuple(name for name in sorted(names) if hasattr(importlib.import_module(f"{__name__}.{name}"), "Model"))


def model_class(name):
    if name not in families():
        raise ValueError(f"unknown --model '{name}'; valid: {', '.join(families())}")
    return importlib.import_module(f"{__name__}.{name}").Model


def build_model(name, configs):
    """A family's model, its projection weights laid out for fast small-batch matmuls (layers/weight_layout.py)."""
    return lay_out_projections(model_class(name)(configs))


def family_trait(name, trait):
    """A family's optional class attribute (see above); False when it does not declare it."""
    return getattr(model_class(name), trait, False)


def n_parameters(model):
    return sum(p.numel() for p in model.parameters())

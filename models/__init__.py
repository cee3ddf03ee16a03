"""Model registry: every module models/<key>.py that defines `Model` is the family `--model <key>`
(and `--spec_draft_model`, `--distill_target_model <key>`), so adding a family is adding its file.

A family's Model is built from its configuration alone (a frozen dataclass that checks itself) and declares
`config_from(flags)`, that configuration read from run.py's flags; patch_len, output_len, patches_per_call,
stochastic, n_layers (models/output.py); and `setting_sizes(config)`, the sizes part of its setting string
(cli/paths.py). Optional class attributes: scaled_by_draft_flags (sizes are the --draft_scale_* scaled ones),
can_be_stochastic (its configuration's `stochastic`, --draft_stochastic, adds a log-variance head),
one_call_forecaster (trains on the K*P points after each window), head_dim_multiple (d_model / n_heads must be
a multiple of it), own_flags (run.py flags that only this family reads: refused when no model of the family is
built)."""
import functools
import importlib
import pkgutil
from dataclasses import fields, replace

from layers.weight_layout import lay_out_projections
from models.timer_xl import Dims


@functools.cache
def families():
    """The registry keys, in name order."""
    names = (info.name for info in pkgutil.iter_modules(__path__) if not info.ispkg)
    return tuple(name for name in sorted(names) if hasattr(importlib.import_module(f"{__name__}.{name}"), "Model"))


def model_class(name):
    if name not in families():
        raise ValueError(f"unknown --model '{name}'; valid: {', '.join(families())}")
    return importlib.import_module(f"{__name__}.{name}").Model


def build_model(name, config):
    """A family's model, its projection weights laid out for fast small-batch matmuls (layers/weight_layout.py)."""
    return lay_out_projections(model_class(name)(config))


def config_of(name, flags):
    """The configuration family `name` is built from, read from run.py's flags."""
    return model_class(name).config_from(flags)


def model_from_flags(name, flags):
    return build_model(name, config_of(name, flags))


def teacher_config(name, flags):
    """The configuration of family `name` as the distillation teacher of these (the student's) flags."""
    return as_teacher(config_of(name, flags), flags)


def as_teacher(config, flags):
    """config as the teacher's: the --distill_target_* sizes, never stochastic, never scaled (the fields its family
    has). A one-call student (TTM) trains with --output_token_len K*P, its teacher still predicts one patch per
    token."""
    teacher = {"dims": Dims.of(flags, "distill_target_"), "stochastic": False}
    if family_trait(flags.model, "one_call_forecaster"):
        teacher["output_len"] = flags.input_token_len
    own = {field.name for field in fields(config)}
    return replace(config, **{name: value for name, value in teacher.items() if name in own})


def family_trait(name, trait):
    """A family's optional class attribute (see above); False when it does not declare it."""
    return getattr(model_class(name), trait, False)


def n_parameters(model):
    return sum(p.numel() for p in model.parameters())

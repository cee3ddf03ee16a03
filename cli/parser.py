"""The run.py command line, built from the declarations in cli/flags.py: the parser, the derived defaults, and the
command lines of the scripts that take run.py flags next to their own."""
import argparse

from cli.flags import FLAGS


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (exit status 2), not the usage block."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def argparse_options(flag):
    if flag.is_switch:
        return dict(action="store_true", help=flag.help)
    default = list(flag.default) if flag.nargs else flag.default  # each namespace its own list
    return dict(type=flag.type, default=default, required=flag.required, nargs=flag.nargs, help=flag.help)


def build_parser():
    parser = OneLineErrorParser(
        description="Timer-XL forecasting, draft pretraining, distillation and speculative decoding")
    for flag in FLAGS:
        parser.add_argument(f"--{flag.name}", **argparse_options(flag))
    return parser


def fill_defaults(args):
    """A flag left out that defaults to another flag (the --distill_target_* sizes) takes that flag's value."""
    for flag in FLAGS:
        if flag.defaults_to and getattr(args, flag.name) is None:
            setattr(args, flag.name, getattr(args, flag.defaults_to))
    return args


def parse_flags(argv=None):
    """The parsed and completed flags, not yet validated."""
    return fill_defaults(build_parser().parse_args(argv))


def required_flags(**values):
    """The flags run.py requires as a command line: each with its value in `values`, or else its default."""
    return [word for flag in FLAGS if flag.required
            for word in (f"--{flag.name}", str(values.get(flag.name, flag.default)))]


# The help epilog of the scripts that take run.py flags next to their own.
RUN_PY_FLAGS = "Every other flag is a run.py flag (python run.py --help): the models' sizes, the data, the draft."

# What the analysis and benchmark scripts take for granted; a flag given again after them wins.
SCRIPT_DEFAULTS = required_flags(is_training=0, model_id="script", data="MultivariateDatasetBenchmark")


def parse_script_flags(argv):
    """run.py flags for a script that builds models from them (the target's and the draft's sizes, the data)."""
    return parse_flags(SCRIPT_DEFAULTS + list(argv))

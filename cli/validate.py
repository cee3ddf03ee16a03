"""Start-up validation, the one place that checks run.py's flags: every mistake in the flags, in the data file and
in the checkpoints a run reads or writes becomes a UsageError (utils/failures.py) whose one-line message names the
flag, file or value and what would be valid. run.py calls `validate` before any model or data loader is built."""
from cli.checks.checkpoints import check_checkpoint, checkpoint_sources
from cli.checks.combinations import check_combinations
from cli.checks.data import check_data
from cli.checks.outputs import check_checkpoint_folders, check_output_folder
from cli.checks.values import bound_spec_k, check_values


def validate(args):
    check_values(args)
    bound_spec_k(args)
    check_combinations(args)
    check_data(args)
    for source in checkpoint_sources(args):
        check_checkpoint(source)
    check_output_folder("the working folder (result files, test_results/)", ".")
    if args.is_training:
        check_checkpoint_folders(args)

"""Where a run's files go: the setting string that names its checkpoint folder and result records
(training.md section 3), and the checkpoint path inside --checkpoints. Python and the bash scripts
(scripts/lib.sh: python -m cli.paths <run.py flags>) take both from here."""
import os

from cli.checks.values import check_values
from cli.parser import parse_flags
from data_provider.data_factory import reads_a_folder
from data_provider.splits import file_stem
from models import config_of, model_class
from utils.failures import UsageError, exit_on_usage_error

CHECKPOINT_FILE = "checkpoint.pth"


def data_name(args):
    """The data a run reads: the --data_path stem, or the --root_path folder name for a folder of files."""
    if reads_a_folder(args.data):
        return os.path.basename(os.path.normpath(args.root_path))
    return file_stem(args.data_path)


def make_setting(args, ii):
    """The setting string of training run ii of these flags: its checkpoint folder's name and its records' first
    line; the sizes in it as the family states them (its setting_sizes: the effective, scaled ones for a draft)."""
    sizes = model_class(args.model).setting_sizes(config_of(args.model, args))
    setting = (f"{args.model_id}_{args.model}_{args.data}_{data_name(args)}_sl{args.seq_len}_it{args.input_token_len}"
               f"_ot{args.output_token_len}_lr{args.learning_rate}_bt{args.batch_size}_wd{args.weight_decay}"
               f"_{sizes}_cos{args.cosine}_{args.des}_{ii}")
    return setting if args.task_name == "pretrain" else f"{args.task_name}_{setting}"


def checkpoint_folder(args, ii=0):
    """The folder training run ii of these flags writes its checkpoint, manifest and resume state in."""
    return os.path.join(args.checkpoints, make_setting(args, ii))


def checkpoint_folders(args):
    """The folders a training run writes its checkpoints in, one per --itr."""
    return [checkpoint_folder(args, ii) for ii in range(args.itr)]


def checkpoint_path(args, ii=0):
    """The checkpoint training run ii of these flags writes."""
    return os.path.join(checkpoint_folder(args, ii), CHECKPOINT_FILE)


def tested_checkpoint(args):
    """The checkpoint a test-only run (--is_training 0) reads: --test_dir/--test_file_name inside --checkpoints."""
    return os.path.join(args.checkpoints, args.test_dir, args.test_file_name)


def main():
    """python -m cli.paths <run.py flags>: the checkpoint those flags train; flags no model can be built from are
    one line on stderr and exit status 2."""
    args = parse_flags()
    with exit_on_usage_error():
        check_values(args)
        try:
            path = checkpoint_path(args)
        except ValueError as error:  # sizes the family's configuration refuses
            raise UsageError(f"--model {args.model}: {error}") from None
    print(path)


if __name__ == "__main__":
    main()

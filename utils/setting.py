"""The setting string that names a run's checkpoint folder and result records (training.md section 3)."""
import os

from data_provider.data_factory import reads_a_folder
from data_provider.splits import file_stem
from models.timer_xl import Dims


def model_dims(args):
    """Effective sizes: scaled for the draft, as given otherwise."""
    if args.model == "timer_xl_draft":
        from models.timer_xl_draft import draft_dims
        return draft_dims(args)
    return Dims.of(args)


def data_name(args):
    """The data a run reads: the --data_path stem, or the --root_path folder name for a folder of files."""
    if reads_a_folder(args.data):
        return os.path.basename(os.path.normpath(args.root_path))
    return file_stem(args.data_path)


def make_setting(args, ii):
    dims = model_dims(args)
    setting = (f"{args.model_id}_{args.model}_{args.data}_{data_name(args)}_sl{args.seq_len}_it{args.input_token_len}"
               f"_ot{args.output_token_len}_lr{args.learning_rate}_bt{args.batch_size}_wd{args.weight_decay}"
               f"_el{dims.e_layers}_dm{dims.d_model}_dff{dims.d_ff}_nh{dims.n_heads}_cos{args.cosine}_{args.des}_{ii}")
    return setting if args.task_name == "pretrain" else f"{args.task_name}_{setting}"


if __name__ == "__main__":  # scripts ask for the folder name a command line will use: python -m utils.setting <run.py flags>
    from utils.flags import parse_flags
    print(make_setting(parse_flags(), 0))

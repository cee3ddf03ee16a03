"""The setting string that names a run's checkpoint folder and result records (training.md section 3)."""
from models.timer_xl import Dims


def model_dims(args):
    """Effective sizes: scaled for the draft, as given otherwise."""
    if args.model == "timer_xl_draft":
        from models.timer_xl_draft import draft_dims
        return draft_dims(args)
    return Dims.of(args)


def make_setting(args, ii):
    dims = model_dims(args)
    setting = (f"{args.model_id}_{args.model}_{args.data}_sl{args.seq_len}_it{args.input_token_len}"
               f"_ot{args.output_token_len}_lr{args.learning_rate}_bt{args.batch_size}_wd{args.weight_decay}"
               f"_el{dims.e_layers}_dm{dims.d_model}_dff{dims.d_ff}_nh{dims.n_heads}_cos{args.cosine}_{args.des}_{ii}")
    return setting if args.task_name == "pretrain" else f"{args.task_name}_{setting}"


if __name__ == "__main__":  # scripts ask for the folder name a command line will use: python -m utils.setting <run.py flags>
    import sys

    from run import build_parser, fill_defaults
    print(make_setting(fill_defaults(build_parser().parse_args(sys.argv[1:])), 0))

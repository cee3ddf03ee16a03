"""The setting string that names a run's checkpoint folder and result records (training.md section 3)."""
from models import model_class


def make_setting(args, ii):
    """Sizes as the family states them (its setting_sizes: the effective, scaled ones for a draft)."""
    sizes = model_class(args.model).setting_sizes(args)
    setting = (f"{args.model_id}_{args.model}_{args.data}_sl{args.seq_len}_it{args.input_token_len}"
               f"_ot{args.output_token_len}_lr{args.learning_rate}_bt{args.batch_size}_wd{args.weight_decay}"
               f"_{sizes}_cos{args.cosine}_{args.des}_{ii}")
    return setting if args.task_name == "pretrain" else f"{args.task_name}_{setting}"


if __name__ == "__main__":  # scripts ask for the folder name a command line will use: python -m utils.setting <run.py flags>
    import sys

    from run import build_parser, fill_defaults
    print(make_setting(fill_defaults(build_parser().parse_args(sys.argv[1:])), 0))

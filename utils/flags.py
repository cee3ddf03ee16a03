"""The run.py command line: the parser and the derived defaults (training.md section 2, speculative.md section 8).

run.py, cli/paths.py and the analysis scripts read flags through here; utils/validation.py checks them."""
import argparse
import functools

from models import families


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (exit status 2), not the usage block."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser():
    p = OneLineErrorParser(description="Timer-XL forecasting, draft pretraining, distillation and speculative decoding")
    a = p.add_argument
    # basic config
    a("--task_name", type=str, required=True, default="forecast", help="forecast or pretrain")
    a("--is_training", type=int, required=True, default=1, help="1 = train + test, 0 = test a checkpoint")
    a("--model_id", type=str, required=True, default="test")
    a("--model", type=str, required=True, default="timer_xl", help=", ".join(families()))
    a("--seed", type=int, default=2021)
    # data
    a("--data", type=str, required=True, default="ETTh1", help="dataset class key")
    a("--root_path", type=str, default="./dataset/ETT-small/")
    a("--data_path", type=str, default="ETTh1.csv")
    a("--checkpoints", type=str, default="./checkpoints/")
    a("--overwrite_checkpoint", action="store_true",
      help="train into a checkpoint folder even if its manifest records other model or data flags")
    # lengths
    a("--seq_len", type=int, default=672)
    a("--input_token_len", type=int, default=576)
    a("--output_token_len", type=int, default=96)
    a("--test_seq_len", type=int, default=672)
    a("--test_pred_len", type=int, default=96)
    # model
    a("--dropout", type=float, default=0.1)
    a("--e_layers", type=int, default=1)
    a("--d_model", type=int, default=512)
    a("--n_heads", type=int, default=8)
    a("--d_ff", type=int, default=2048)
    a("--activation", type=str, default="relu")
    a("--covariate", action="store_true")
    a("--rope_position", type=str, default="time", choices=("time", "flat"),
      help="Timer-XL RoPE position: time index n, or OpenLTM's flattened c*N + n (sliding rollout only)")
    a("--use_norm", action="store_true")
    a("--nonautoregressive", action="store_true")
    a("--test_dir", type=str, default="./test")
    a("--test_file_name", type=str, default="checkpoint.pth")
    a("--visualize", action="store_true", help="PNG plots of truth vs forecast during test")
    a("--flash_attention", action="store_true", help="SDPA attention path (same numbers)")
    # adaptation
    a("--adaptation", action="store_true")
    a("--pretrain_model_path", type=str, default="pretrain_model.pth")
    a("--subset_rand_ratio", type=float, default=1)
    # optimisation
    a("--num_workers", type=int, default=10)
    a("--itr", type=int, default=1)
    a("--train_epochs", type=int, default=10)
    a("--batch_size", type=int, default=32)
    a("--patience", type=int, default=3)
    a("--learning_rate", type=float, default=0.0001)
    a("--des", type=str, default="test")
    a("--lradj", type=str, default="type1")
    a("--cosine", action="store_true")
    a("--tmax", type=int, default=10)
    a("--weight_decay", type=float, default=0)
    a("--valid_last", action="store_true")
    a("--last_token", action="store_true")
    # devices
    a("--gpu", type=int, default=0)
    a("--ddp", action="store_true")
    a("--dp", action="store_true")
    a("--devices", type=str, default="0,1,2,3")
    # TTM (models/ttm.py)
    a("--n_vars", type=int, default=7, help="ttm: variables, needed by channel mixing")
    a("--factor", type=int, default=2, help="ttm: MLP expansion factor")
    a("--mode", type=str, default="mix_channel", help="ttm backbone: common_channel or mix_channel")
    a("--AP_levels", type=int, default=0, help="ttm: adaptive-patching levels above the plain one")
    a("--d_mode", type=str, default="common_channel", help="ttm decoder: common_channel or mix_channel")
    a("--layers", type=int, default=8, help="ttm: mixer layers per backbone level")
    a("--hidden_dim", type=int, default=16, help="ttm: feature width D")
    a("--ttm_patches", type=int, default=4, help="ttm: patches forecast in one call (K_max as a draft)")
    # draft model
    a("--draft_scale_d_model", type=float, default=0.25)
    a("--draft_scale_n_heads", type=float, default=0.25)
    a("--draft_scale_d_ff", type=float, default=0.25)
    a("--draft_scale_e_layers", type=float, default=0.25)
    a("--draft_stochastic", action="store_true", help="draft has mean and log-variance heads")
    # distillation
    a("--distill", action="store_true")
    a("--distill_target_model", type=str, default="timer_xl")
    a("--distill_target_ckpt", type=str, default="")
    a("--distill_target_d_model", type=int, default=None, help="default: --d_model")
    a("--distill_target_n_heads", type=int, default=None, help="default: --n_heads")
    a("--distill_target_d_ff", type=int, default=None, help="default: --d_ff")
    a("--distill_target_e_layers", type=int, default=None, help="default: --e_layers")
    a("--draft_nll_var_reg", type=float, default=0.01)
    a("--draft_teacher_noise", type=float, default=0.05)
    a("--distill_vali", type=str, default="truth",
      help="what the student's validation loss (early stopping) compares with: truth or teacher")
    a("--distill_rollout_patches", type=int, default=0,
      help="distil on each window followed by this many patches of the teacher's own cached rollout (0: the window)")
    # speculative decoding
    a("--use_speculative", action="store_true")
    a("--spec_draft_model", type=str, default="timer_xl_draft")
    a("--spec_draft_ckpt", type=str, default="")
    a("--spec_k", type=int, default=3)
    a("--spec_sigma", type=float, default=0.7)
    a("--spec_accept_bias", type=float, default=1.0)
    a("--spec_accept_mode", type=str, default="tolerance", help="tolerance or lossless")
    a("--spec_residual_max_tries", type=int, default=100)
    a("--spec_adaptive", action="store_true", help="adapt K between rounds from the running acceptance")
    a("--spec_mse_budget", type=float, default=None,
      help="PCT: choose sigma and K on validation windows so that the MSE stays within PCT%% of target-only decoding")
    a("--spec_calib_windows", type=int, default=64, help="with --spec_mse_budget: validation windows to calibrate on")
    a("--spec_calib_sigmas", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
      help="with --spec_mse_budget: the sigmas tried")
    a("--rollout", type=str, default="sliding", help="sliding or cached (KV caches, speculative.md 2.1)")
    a("--cache_max_tokens", type=int, default=0,
      help="with --rollout cached: new tokens attend to at most this many time steps (0: all)")
    a("--cache_stats", type=str, default="trailing",
      help="with --rollout cached: normalise each new step with the statistics of the L points ending with it "
           "(trailing) or with the context window's (frozen)")
    a("--target_sample", action="store_true", help="target-only baseline emits mu_p + sigma*eps")
    a("--spec_compare_baseline", action="store_true")
    a("--spec_debug_accept", action="store_true")
    a("--spec_debug_out", type=str, default="spec_debug.csv")
    a("--spec_debug_max_batches", type=int, default=3)
    a("--trace_inference_breakdown", action="store_true")
    a("--test_max_batches", type=int, default=None, help="stop the test after this many batches")
    return p


def fill_defaults(args):
    """--distill_target_* sizes default to the target's --d_model etc."""
    for name in ("d_model", "n_heads", "d_ff", "e_layers"):
        if getattr(args, f"distill_target_{name}") is None:
            setattr(args, f"distill_target_{name}", getattr(args, name))
    return args


@functools.cache
def flag_default(name):
    return build_parser().get_default(name)


def parse_flags(argv=None):
    """The parsed and completed flags, not yet validated."""
    return fill_defaults(build_parser().parse_args(argv))


# The help epilog of the scripts that take run.py flags next to their own.
RUN_PY_FLAGS = "Every other flag is a run.py flag (python run.py --help): the models' sizes, the data, the draft."

# What the analysis and benchmark scripts take for granted; a flag given again after them wins.
SCRIPT_DEFAULTS = ["--task_name", "forecast", "--is_training", "0", "--model_id", "script", "--model", "timer_xl",
                   "--data", "MultivariateDatasetBenchmark"]


def parse_script_flags(argv):
    """run.py flags for a script that builds models from them (the target's and the draft's sizes, the data)."""
    return parse_flags(SCRIPT_DEFAULTS + list(argv))


# Flags that change neither the trained weights nor the data they are fit on (test-time, device and logging
# flags). Retraining a checkpoint folder with other values of these is the same experiment;
# any other difference from the folder's manifest needs --overwrite_checkpoint.
RUN_ONLY_FLAGS = frozenset({
    "is_training", "checkpoints", "overwrite_checkpoint", "test_seq_len", "test_pred_len", "test_dir",
    "test_file_name", "visualize", "flash_attention", "num_workers", "itr", "gpu", "ddp", "dp", "devices",
    "use_speculative", "rollout", "cache_max_tokens", "cache_stats", "target_sample", "trace_inference_breakdown",
    "test_max_batches",
})


# Flags that change what trained weights compute but not their shapes: a checkpoint used with other values than
# those in its manifest loads without a mismatch and gives wrong numbers.
COMPUTATION_FLAGS = ("activation", "use_norm", "covariate", "rope_position")


def changes_the_model_or_data(name):
    return name not in RUN_ONLY_FLAGS and not name.startswith("spec_")

"""Every run.py flag, declared once with what is known about it (training.md section 2, speculative.md section 8):
its type, default and help, the values it takes, the combination in which it does something, and whether it
changes the trained weights or what they compute. The parser (cli/parser.py), the start-up checks (cli/checks/)
and the manifest comparisons read these declarations."""
from dataclasses import dataclass

from data_provider.data_factory import DATA_DICT
from models import families, family_trait
from speculative.acceptance import RULES
from speculative.cached import CACHE_STATS
from speculative.rollout_options import ROLLOUTS
from utils.tools import LRADJ_GAMMA


@dataclass(frozen=True)
class Range:
    """The numbers a flag takes: holds(value) is true inside; text says which (for the messages)."""
    holds: object
    text: str


AT_LEAST_ONE = Range(lambda v: v >= 1, ">= 1")
AT_LEAST_ZERO = Range(lambda v: v >= 0, ">= 0")
ABOVE_ZERO = Range(lambda v: v > 0, "> 0")


@dataclass(frozen=True)
class Combination:
    """holds(args) is true in the combination in which a flag does something; what names it (for the messages)."""
    holds: object
    what: str


def model_or_draft_has(trait):
    """--model, or the --spec_draft_model of a speculative run, is of a family that declares the trait."""
    keys = "/".join(key for key in families() if family_trait(key, trait))
    return Combination(lambda args: family_trait(args.model, trait) or (args.use_speculative and
                                                                       family_trait(args.spec_draft_model, trait)),
                       f"--model {keys} (or --use_speculative with such a --spec_draft_model)")


SPECULATIVE = Combination(lambda args: args.use_speculative, "--use_speculative")
MSE_BUDGET = Combination(lambda args: args.spec_mse_budget is not None, "--spec_mse_budget")
DEBUG_ACCEPT = Combination(lambda args: args.spec_debug_accept, "--spec_debug_accept")
DISTILLATION = Combination(lambda args: args.distill, "--distill")
TEST_ONLY = Combination(lambda args: not args.is_training, "--is_training 0")
CACHED_ROLLOUT = Combination(lambda args: args.rollout == "cached", "--rollout cached")
USES_A_DRAFT = model_or_draft_has("scaled_by_draft_flags")
MAY_BE_STOCHASTIC = model_or_draft_has("can_be_stochastic")


@dataclass(frozen=True)
class Flag:
    """One run.py flag: what the parser, the start-up checks and the manifest comparisons know about it."""
    name: str
    type: type  # bool: a switch, off unless given
    default: object = None
    help: str = None
    required: bool = False
    nargs: str = None
    choices: object = ()  # the valid values: a tuple, or a function that gives them (the model families)
    range: Range = None  # every number given must lie in it
    defaults_to: str = None  # left out: the value of this other flag
    needs: Combination = None  # given without it, the flag does nothing
    changes_training: bool = True  # False: retraining a checkpoint folder with another value is the same experiment
    changes_computation: bool = False  # what trained weights compute changes, their shapes do not

    @property
    def is_switch(self):
        return self.type is bool

    def valid_values(self):
        return self.choices() if callable(self.choices) else self.choices


def switch(name, help=None, **facts):
    """A flag given bare (argparse's store_true)."""
    return Flag(name, bool, False, help, **facts)


FLAGS = (
    # basic config
    Flag("task_name", str, "forecast", "forecast or pretrain", required=True, choices=("forecast", "pretrain")),
    Flag("is_training", int, 1, "1 = train + test, 0 = test a checkpoint", required=True, choices=(0, 1),
         changes_training=False),
    Flag("model_id", str, "test", required=True),
    Flag("model", str, "timer_xl", ", ".join(families()), required=True, choices=families),
    Flag("seed", int, 2021, range=Range(lambda v: 0 <= v < 2 ** 32, "in [0, 2**32) (NumPy's seed range)")),
    # data
    Flag("data", str, "ETTh1", "dataset class key", required=True, choices=tuple(DATA_DICT)),
    Flag("root_path", str, "./dataset/ETT-small/"),
    Flag("data_path", str, "ETTh1.csv"),
    Flag("checkpoints", str, "./checkpoints/", changes_training=False),
    switch("overwrite_checkpoint",
           "train into a checkpoint folder even if its manifest records other model or data flags",
           needs=Combination(lambda args: args.is_training, "--is_training 1"), changes_training=False),
    # lengths
    Flag("seq_len", int, 672, range=AT_LEAST_ONE),
    Flag("input_token_len", int, 576, range=AT_LEAST_ONE),
    Flag("output_token_len", int, 96, range=AT_LEAST_ONE),
    Flag("test_seq_len", int, 672, range=AT_LEAST_ONE, changes_training=False),
    Flag("test_pred_len", int, 96, range=AT_LEAST_ONE, changes_training=False),
    # model
    Flag("dropout", float, 0.1, range=Range(lambda v: 0 <= v < 1, "in [0, 1)")),
    Flag("e_layers", int, 1, range=AT_LEAST_ONE),
    Flag("d_model", int, 512, range=AT_LEAST_ONE),
    Flag("n_heads", int, 8, range=AT_LEAST_ONE),
    Flag("d_ff", int, 2048, range=AT_LEAST_ONE),
    Flag("activation", str, "relu", choices=("relu", "gelu"), changes_computation=True),
    switch("covariate", changes_computation=True),
    Flag("rope_position", str, "time",
         "Timer-XL RoPE position: time index n, or OpenLTM's flattened c*N + n (sliding rollout only)",
         choices=("time", "flat"), changes_computation=True),
    switch("use_norm", changes_computation=True),
    switch("nonautoregressive"),
    Flag("test_dir", str, "./test", needs=TEST_ONLY, changes_training=False),
    Flag("test_file_name", str, "checkpoint.pth", needs=TEST_ONLY, changes_training=False),
    switch("visualize", "PNG plots of truth vs forecast during test", changes_training=False),
    switch("flash_attention", "SDPA attention path (same numbers)", changes_training=False),
    # adaptation
    switch("adaptation"),
    Flag("pretrain_model_path", str, "pretrain_model.pth",
         needs=Combination(lambda args: args.adaptation, "--adaptation")),
    Flag("subset_rand_ratio", float, 1, range=Range(lambda v: 0 < v <= 1, "in (0, 1]")),
    # optimisation
    Flag("num_workers", int, 10, range=AT_LEAST_ZERO, changes_training=False),
    Flag("itr", int, 1, range=AT_LEAST_ONE, changes_training=False),
    Flag("train_epochs", int, 10, range=AT_LEAST_ONE),
    Flag("batch_size", int, 32, range=AT_LEAST_ONE),
    Flag("patience", int, 3, range=AT_LEAST_ZERO),
    Flag("learning_rate", float, 0.0001, range=ABOVE_ZERO),
    Flag("des", str, "test"),
    Flag("lradj", str, "type1", choices=(*LRADJ_GAMMA, "constant"),
         needs=Combination(lambda args: not args.cosine, "no --cosine (--cosine sets the schedule)")),
    switch("cosine"),
    Flag("tmax", int, 10, range=AT_LEAST_ONE, needs=Combination(lambda args: args.cosine, "--cosine")),
    Flag("weight_decay", float, 0, range=AT_LEAST_ZERO),
    switch("valid_last"),
    switch("last_token", needs=Combination(lambda args: args.covariate, "--covariate")),
    # devices
    Flag("gpu", int, 0, changes_training=False),
    switch("ddp", changes_training=False),
    switch("dp", changes_training=False),
    Flag("devices", str, "0,1,2,3", needs=Combination(lambda args: args.dp, "--dp"), changes_training=False),
    # TTM (models/ttm.py; the family declares these as its own flags)
    Flag("n_vars", int, 7, "ttm: variables, needed by channel mixing"),
    Flag("factor", int, 2, "ttm: MLP expansion factor"),
    Flag("mode", str, "mix_channel", "ttm backbone: common_channel or mix_channel"),
    Flag("AP_levels", int, 0, "ttm: adaptive-patching levels above the plain one"),
    Flag("d_mode", str, "common_channel", "ttm decoder: common_channel or mix_channel"),
    Flag("layers", int, 8, "ttm: mixer layers per backbone level"),
    Flag("hidden_dim", int, 16, "ttm: feature width D"),
    Flag("ttm_patches", int, 4, "ttm: patches forecast in one call (K_max as a draft)"),
    # draft model
    Flag("draft_scale_d_model", float, 0.25, range=ABOVE_ZERO, needs=USES_A_DRAFT),
    Flag("draft_scale_n_heads", float, 0.25, range=ABOVE_ZERO, needs=USES_A_DRAFT),
    Flag("draft_scale_d_ff", float, 0.25, range=ABOVE_ZERO, needs=USES_A_DRAFT),
    Flag("draft_scale_e_layers", float, 0.25, range=ABOVE_ZERO, needs=USES_A_DRAFT),
    switch("draft_stochastic", "draft has mean and log-variance heads", needs=MAY_BE_STOCHASTIC),
    # distillation
    switch("distill"),
    Flag("distill_target_model", str, "timer_xl", choices=families, needs=DISTILLATION),
    Flag("distill_target_ckpt", str, "", needs=DISTILLATION),
    Flag("distill_target_d_model", int, None, "default: --d_model", range=AT_LEAST_ONE, defaults_to="d_model",
         needs=DISTILLATION),
    Flag("distill_target_n_heads", int, None, "default: --n_heads", range=AT_LEAST_ONE, defaults_to="n_heads",
         needs=DISTILLATION),
    Flag("distill_target_d_ff", int, None, "default: --d_ff", range=AT_LEAST_ONE, defaults_to="d_ff",
         needs=DISTILLATION),
    Flag("distill_target_e_layers", int, None, "default: --e_layers", range=AT_LEAST_ONE, defaults_to="e_layers",
         needs=DISTILLATION),
    Flag("draft_nll_var_reg", float, 0.01, range=AT_LEAST_ZERO,
         needs=Combination(lambda args: args.draft_stochastic, "--draft_stochastic")),
    Flag("draft_teacher_noise", float, 0.05, range=AT_LEAST_ZERO, needs=DISTILLATION),
    Flag("distill_vali", str, "truth",
         "what the student's validation loss (early stopping) compares with: truth or teacher",
         choices=("truth", "teacher"), needs=DISTILLATION),
    Flag("distill_rollout_patches", int, 0,
         "distil on each window followed by this many patches of the teacher's own cached rollout (0: the window)",
         range=AT_LEAST_ZERO, needs=DISTILLATION),
    # speculative decoding (test-time: none of these changes training)
    switch("use_speculative", changes_training=False),
    Flag("spec_draft_model", str, "timer_xl_draft", choices=families, needs=SPECULATIVE, changes_training=False),
    Flag("spec_draft_ckpt", str, "", needs=SPECULATIVE, changes_training=False),
    Flag("spec_k", int, 3, range=AT_LEAST_ONE, needs=SPECULATIVE, changes_training=False),
    Flag("spec_sigma", float, 0.7, range=ABOVE_ZERO,
         needs=Combination(lambda args: args.use_speculative or args.target_sample,
                           "--use_speculative or --target_sample"), changes_training=False),
    Flag("spec_accept_bias", float, 1.0, range=AT_LEAST_ONE, needs=SPECULATIVE, changes_training=False),
    Flag("spec_accept_mode", str, "tolerance", "tolerance or lossless", choices=tuple(RULES),
         needs=SPECULATIVE, changes_training=False),
    Flag("spec_residual_max_tries", int, 100, range=AT_LEAST_ONE, needs=SPECULATIVE, changes_training=False),
    switch("spec_adaptive", "adapt K between rounds from the running acceptance", needs=SPECULATIVE,
           changes_training=False),
    Flag("spec_mse_budget", float, None,
         "PCT: choose sigma and K on validation windows so that the MSE stays within PCT%% of target-only decoding",
         range=Range(lambda v: v >= 0, "a percentage >= 0"), needs=SPECULATIVE, changes_training=False),
    Flag("spec_calib_windows", int, 64, "with --spec_mse_budget: validation windows to calibrate on",
         range=AT_LEAST_ONE, needs=MSE_BUDGET, changes_training=False),
    Flag("spec_calib_sigmas", float, [0.1, 0.2, 0.3, 0.5, 0.7, 1.0], "with --spec_mse_budget: the sigmas tried",
         nargs="+", range=ABOVE_ZERO, needs=MSE_BUDGET, changes_training=False),
    Flag("rollout", str, "sliding", "sliding or cached (KV caches, speculative.md 2.1)", choices=ROLLOUTS,
         changes_training=False),
    Flag("cache_max_tokens", int, 0,
         "with --rollout cached: new tokens attend to at most this many time steps (0: all)",
         range=AT_LEAST_ZERO, needs=CACHED_ROLLOUT, changes_training=False),
    Flag("cache_stats", str, "trailing",
         "with --rollout cached: normalise each new step with the statistics of the L points ending with it "
         "(trailing) or with the context window's (frozen)",
         choices=CACHE_STATS, needs=CACHED_ROLLOUT, changes_training=False),
    switch("target_sample", "target-only baseline emits mu_p + sigma*eps", needs=TEST_ONLY, changes_training=False),
    switch("spec_compare_baseline", needs=SPECULATIVE, changes_training=False),
    switch("spec_debug_accept", needs=SPECULATIVE, changes_training=False),
    Flag("spec_debug_out", str, "spec_debug.csv", needs=DEBUG_ACCEPT, changes_training=False),
    Flag("spec_debug_max_batches", int, 3, range=AT_LEAST_ZERO, needs=DEBUG_ACCEPT, changes_training=False),
    switch("trace_inference_breakdown", changes_training=False),
    Flag("test_max_batches", int, None, "stop the test after this many batches",
         range=Range(lambda v: v >= 1, ">= 1 (or left out for all batches)"), changes_training=False),
)
FLAG = {flag.name: flag for flag in FLAGS}

# A checkpoint used with other values of these than those in its manifest loads without a mismatch and gives wrong
# numbers.
COMPUTATION_FLAGS = tuple(flag.name for flag in FLAGS if flag.changes_computation)

"""Test with speculative decoding (--use_speculative): the draft proposes, the target verifies.

The target is --model (trained here or loaded from --test_dir); the draft is --spec_draft_model
built from the same flags (scaled by --draft_scale_*) and loaded from --spec_draft_ckpt at start-up.
With --spec_compare_baseline the target-only rollout runs on the same batches, alternating which
goes first, and the record gets the measured speedup, mse_vs_target and the speed model's prediction.
"""
from exp.exp_forecast import ExpForecast
from models import build_model
from utils.acceptance import predicted_speedup
from utils.checkpoint import CheckpointMismatch, load_checkpoint
from utils.spec_decoding import SpecConfig, SpecCounters, SpecTracer, SpeculativeDecoder
from utils.spec_report import (BREAKDOWN_FILE, SUMMARY_FILE, write_debug_csv, write_speculative_breakdown,
                               write_speculative_summary)
from utils.stopwatch import timed


def build_draft(args):
    """The draft on CPU, loaded from --spec_draft_ckpt; any mismatch stops the run naming the flags."""
    draft = build_model(args.spec_draft_model, args)
    try:
        load_checkpoint(draft, args.spec_draft_ckpt)
    except (CheckpointMismatch, FileNotFoundError) as error:
        raise SystemExit(f"error: --spec_draft_ckpt {args.spec_draft_ckpt} does not fit a {args.spec_draft_model} built "
                         f"from --d_model {args.d_model} --n_heads {args.n_heads} --d_ff {args.d_ff} --e_layers "
                         f"{args.e_layers}, --draft_scale_*, --draft_stochastic {args.draft_stochastic} and "
                         f"--input_token_len {args.input_token_len}: {error}") from None
    return draft.eval()


class ExpSpeculative(ExpForecast):
    def __init__(self, args):
        draft = build_draft(args)  # a bad draft checkpoint stops the run before the data and the target are touched
        super().__init__(args)
        self.draft = draft.to(self.device)
        self.config = SpecConfig(k=args.spec_k, sigma=args.spec_sigma, bias=args.spec_accept_bias,
                                 accept_mode=args.spec_accept_mode, residual_max_tries=args.spec_residual_max_tries,
                                 draft_stochastic=args.draft_stochastic, patch_len=args.input_token_len, seed=args.seed,
                                 adaptive=args.spec_adaptive)

    def _begin_test(self, model):
        self.gen_time_s = 0.0
        self.baseline_time_s = 0.0
        self.squared_diff_to_target, self.n_values = 0.0, 0
        self.counters, self.tracer, self.debug_rows = SpecCounters(), SpecTracer(), []
        self.decoder = SpeculativeDecoder(model, self.draft, self.config, self.counters, self.tracer, self.debug_rows)

    def _forecast_batch(self, model, x, sample_ids, batch_index):
        args = self.args
        with_debug = args.spec_debug_accept and batch_index < args.spec_debug_max_batches
        self.decoder.debug_rows = self.debug_rows if with_debug else None
        runs = {"speculative": lambda: self.decoder.generate(x, args.test_pred_len, sample_ids, batch_index)}
        if args.spec_compare_baseline:
            runs["baseline"] = lambda: self._baseline_rollout(model, x, sample_ids)
        order = sorted(runs, reverse=batch_index % 2 == 1)  # alternate which goes first
        outputs = {name: timed(runs[name], x.device) for name in order}
        pred, seconds = outputs["speculative"]
        self.gen_time_s += seconds
        if args.spec_compare_baseline:
            target_pred, baseline_s = outputs["baseline"]
            self.baseline_time_s += baseline_s
            self.squared_diff_to_target += (pred - target_pred).double().square().sum().item()
            self.n_values += pred.numel()
        return pred

    def _progress(self):
        return {"accept%": f"{self.counters.acceptance_pct:.1f}", "patches/call": f"{self.counters.patches_per_target_call:.2f}"}

    def _speed_model(self, n_batches):
        """Measured draft cost c and verify cost v, both per batched call relative to one target step
        of the baseline, and the speedup the model predicts from them and the measured acceptance."""
        steps_per_batch = -(-self.args.test_pred_len // self.args.input_token_len)
        target_step_s = self.baseline_time_s / (n_batches * steps_per_batch)
        tracer = self.tracer
        c = tracer.t_draft_total / max(tracer.n_draft_calls, 1) / target_step_s
        v = tracer.t_target_verify_total / max(tracer.n_target_verify_calls, 1) / target_step_s
        alpha = self.counters.accepted / max(self.counters.attempted, 1)
        return c, v, predicted_speedup(alpha, self.config.k, c, v)

    def _report_inference(self, setting, result, n_batches):
        args = self.args
        comparison = {}
        if args.spec_compare_baseline:
            c, v, predicted = self._speed_model(n_batches)
            comparison = dict(baseline_per_batch_s=self.baseline_time_s / n_batches,
                              mse_vs_target=self.squared_diff_to_target / self.n_values,
                              cost_ratio_c=c, verify_cost_v=v, predicted_speedup=predicted)
        record = write_speculative_summary(SUMMARY_FILE, setting, result["mse"], result["mae"], self.gen_time_s,
                                           n_batches, self.counters, self.config, args.rollout, **comparison,
                                           test_pred_len=args.test_pred_len, batch_size=args.batch_size)
        print(record, end="")
        if args.trace_inference_breakdown:
            write_speculative_breakdown(BREAKDOWN_FILE, setting, self.tracer)
        if args.spec_debug_accept:
            write_debug_csv(args.spec_debug_out, self.debug_rows)

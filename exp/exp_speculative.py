"""Test with speculative decoding (--use_speculative): the draft proposes, the target verifies.

The target is --model (trained here or loaded from --test_dir); the draft is --spec_draft_model
built from the same flags and loaded from --spec_draft_ckpt at start-up: timer_xl_draft and
timer_draft scale the target's sizes by --draft_scale_*; ttm has sizes of its own (--hidden_dim,
--layers, ...), which the scales do not touch.
Both decode with --rollout. Before timing starts, each side runs once, untimed, on the first batch
(the speculative decoder measures its step costs there); after each timed batch, untimed, the decoder
measures them once more, so c, v and the prefill costs are medians over the run. The record gets them
with their ranges and the speed model's prediction; with --spec_compare_baseline the target-only
rollout runs on the same batches, the order alternating every batch, and the record also gets the
measured speedup and mse_vs_target. With --spec_mse_budget, σ and K are chosen on validation windows
before the test (speculative/calibration.py); the calibration is saved beside the draft checkpoint, keyed
by what it depends on, and reused by a later run with the same flags; the baseline always runs, so the
record gets the test's MSE increase.
"""
import hashlib
import json
import os

from cli.paths import tested_checkpoint
from exp.exp_forecast import ExpForecast
from models import model_from_flags
from speculative import RolloutOptions, SpecConfig, SpeculativeDecoder
from speculative.calibration import Calibration, calibrate, calibration_batches
from speculative.debug_rows import DEBUG_COLUMNS, debug_rows
from speculative.speed_model import reported_k, speed_report
from utils.checkpoint import load_checkpoint
from utils.metrics import StreamingMetrics
from utils.records import (BREAKDOWN_FILE, SUMMARY_FILE, write_debug_csv, write_speculative_breakdown,
                           write_speculative_summary)
from utils.timing import timed


def build_draft(args):
    """The draft on CPU, loaded from --spec_draft_ckpt (start-up validation has checked that it fits)."""
    return load_checkpoint(model_from_flags(args.spec_draft_model, args), args.spec_draft_ckpt).eval()


class ExpSpeculative(ExpForecast):
    def __init__(self, args):
        draft = build_draft(args)
        super().__init__(args)
        self.draft = draft.to(self.device)
        self.config = SpecConfig.of(args)
        self.calibration = None
        self.compares = args.spec_compare_baseline or args.spec_mse_budget is not None

    def _begin_test(self, model):
        super()._begin_test(model)
        args = self.args
        if args.spec_mse_budget is not None:
            self.calibration = self._calibrated(model)
            self.config = self.calibration.config(SpecConfig.of(args))
        self.baseline_time_s = 0.0
        self.squared_diff_to_target, self.n_values = 0.0, 0
        self.baseline_metrics, self.baseline_pred = StreamingMetrics(), None
        self.debug_rows = []
        self.decoder = SpeculativeDecoder(model, self.draft, self.config, RolloutOptions.of(args))

    def _calibrated(self, model):
        """The calibration of --spec_mse_budget: read from beside the draft checkpoint if one with the same key
        is there, else measured on the validation windows and saved there."""
        path = os.path.join(os.path.dirname(os.path.abspath(self.args.spec_draft_ckpt)),
                            f"calibration-{self._calibration_key()}.json")
        if os.path.isfile(path):
            calibration = Calibration.load(path)
            print(f"calibration read from {path} (measured in {calibration.seconds:.1f} s)")
            return calibration
        args = self.args
        calibration = calibrate(model, self.draft, SpecConfig.of(args), RolloutOptions.of(args),
                                calibration_batches(args, self.device), args.test_pred_len, args.spec_mse_budget,
                                args.spec_calib_sigmas)
        calibration.save(path)
        print(f"calibration: {calibration.seconds:.1f} s on {calibration.windows} validation windows, "
              f"apart from the test; saved to {path}")
        for s in calibration.settings:
            print(f"  sigma {s.sigma:g}, K {s.k}: accept {s.acceptance_pct:.1f}%, MSE +{s.mse_increase_pct:.2f}% "
                  f"(upper 95% {s.mse_increase_upper_pct:+.2f}%), predicted x{s.predicted_speedup:.2f}")
        chosen = calibration.chosen
        print("chosen: " + (f"sigma {chosen.sigma:g}, K {chosen.k}" if chosen else
                            f"none within {args.spec_mse_budget:g}%: target-only decoding"))
        return calibration

    def _calibration_key(self):
        """A hash of everything the calibration depends on: the checkpoints (path, size, time) and the flags."""
        args = self.args
        target = self.checkpoint if args.is_training else tested_checkpoint(args)
        files = [(os.path.abspath(p), os.path.getsize(p), os.path.getmtime(p)) for p in (target, args.spec_draft_ckpt)]
        flags = {name: getattr(args, name) for name in (
            "data", "root_path", "data_path", "test_seq_len", "test_pred_len", "batch_size", "rollout",
            "cache_max_tokens", "cache_stats", "spec_k", "spec_accept_bias", "spec_accept_mode", "draft_stochastic",
            "spec_mse_budget", "spec_calib_windows", "spec_calib_sigmas", "seed", "spec_draft_model", "model")}
        return hashlib.sha1(json.dumps([files, flags], sort_keys=True).encode()).hexdigest()[:12]

    def _warm_up(self, model, x, sample_ids):
        self.decoder.generate(x, self.args.test_pred_len, sample_ids)
        if self.compares:
            self.baseline.generate(x, self.args.test_pred_len, sample_ids)
        self.decoder.reset_counts(self.device, self.args.trace_inference_breakdown)

    def _forecast_batch(self, model, x, sample_ids, batch_index):
        args = self.args
        with_debug = args.spec_debug_accept and batch_index < args.spec_debug_max_batches
        self.decoder.round_records = [] if with_debug else None
        runs = {"speculative": lambda: self.decoder.generate(x, args.test_pred_len, sample_ids, batch_index)}
        if self.compares:
            runs["baseline"] = lambda: self.baseline.generate(x, args.test_pred_len, sample_ids)
        order = sorted(runs, reverse=batch_index % 2 == 1)  # alternate which goes first
        outputs = {name: timed(runs[name], x.device) for name in order}
        pred, seconds = outputs["speculative"]
        self.gen_time_s += seconds
        self.decoder.sample_costs(x, args.test_pred_len)
        if with_debug:
            self.debug_rows += [row for record in self.decoder.round_records for row in debug_rows(record, self.config)]
        if self.compares:
            target_pred, baseline_s = outputs["baseline"]
            self.baseline_pred = target_pred.cpu()
            self.baseline_time_s += baseline_s
            self.squared_diff_to_target += (pred - target_pred).double().square().sum().item()
            self.n_values += pred.numel()
        return pred

    def _score_baseline(self, true):
        if self.baseline_pred is not None:
            self.baseline_metrics.update(self._metric_view(self.baseline_pred).numpy(), self._metric_view(true).numpy())

    def _progress(self):
        counters = self.decoder.counters
        return {"accept%": f"{counters.acceptance_pct:.1f}", "patches/call": f"{counters.patches_per_target_call:.2f}"}

    def _report_inference(self, setting, result, n_batches):
        args = self.args
        counters = self.decoder.counters
        extra = dict(speed=speed_report(self.decoder.costs, counters, reported_k(self.config, counters)))
        if self.compares:
            extra.update(baseline_per_batch_s=self.baseline_time_s / n_batches,
                         mse_vs_target=self.squared_diff_to_target / self.n_values,
                         baseline_mse=self.baseline_metrics.result()["mse"])
        record = write_speculative_summary(SUMMARY_FILE, setting, result["mse"], result["mae"], self.gen_time_s,
                                           n_batches, self.decoder.counters, self.config, self.decoder.rollout.label,
                                           test_pred_len=args.test_pred_len, batch_size=args.batch_size,
                                           calibration=self.calibration and self.calibration.summary(), **extra)
        print(record, end="")
        if args.trace_inference_breakdown:
            write_speculative_breakdown(BREAKDOWN_FILE, setting, self.decoder.tracer)
        if args.spec_debug_accept:
            write_debug_csv(args.spec_debug_out, self.debug_rows, DEBUG_COLUMNS)

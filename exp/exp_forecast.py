"""Forecasting experiment: training with early stopping, validation, and the target-only test
rollout (--rollout sliding or cached, speculative/target_only.py)."""
import math
import os

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cli.paths import checkpoint_path, make_setting, tested_checkpoint
from data_provider.data_factory import get_dataset, get_loader
from models import model_from_flags, n_parameters
from speculative import RolloutOptions, TargetOnlyDecoder
from utils.atomic import atomic_write
from utils.checkpoint import load_checkpoint, save_checkpoint, write_manifest
from utils.distributed import all_reduce_sum, barrier, init_distributed, shutdown
from utils.failures import RunFailure
from utils.losses import gaussian_nll
from utils.metrics import StreamingMetrics
from utils.records import (BREAKDOWN_FILE, FORECAST_RESULT_FILE, SUMMARY_FILE, append_record, forecast_record,
                           write_standard_breakdown, write_standard_summary)
from utils.timing import ComponentTimer, clock, timed
from utils.tools import EarlyStopping, learning_rate_at, plot_forecast, set_learning_rate

RESUME_FILE = "resume.pth"  # beside checkpoint.pth while a training has epochs left


def select_device(args, dist_info):
    if not torch.cuda.is_available():  # --dp without CUDA is refused at start-up
        return torch.device("cpu")
    if args.dp:
        return torch.device(f"cuda:{int(args.devices.replace(' ', '').split(',')[0])}")
    if args.ddp:
        return torch.device(f"cuda:{dist_info.local_rank}")
    return torch.device(f"cuda:{args.gpu}")


def check_finite_loss(loss, what, checkpoint):
    """A NaN or infinite loss stops training before it reaches the weights or the checkpoint."""
    if not math.isfinite(loss):
        kept = f"{checkpoint} holds the best epoch before it" if os.path.exists(checkpoint) else "no checkpoint saved"
        raise RunFailure(f"{what} is {loss}: training diverged (a lower --learning_rate may help); {kept}")


class ExpForecast:
    def __init__(self, args):
        self.args = args
        self.dist = init_distributed(args.ddp)
        self.device = select_device(args, self.dist)
        flags = ("train", "val", "test") if args.is_training else ("test",)
        self.datasets = {flag: get_dataset(args, flag) for flag in flags}
        self.model = self._build_model()

    # ---------------------------------------------------------------- model
    def _build_model(self):
        args = self.args
        model = model_from_flags(args.model, args)
        if self.dist.is_main:
            print(f"model {args.model}: {n_parameters(model):,} parameters")
        if args.adaptation:
            load_checkpoint(model, args.pretrain_model_path, map_head=getattr(model, "stochastic", False))
        model.to(self.device)
        if args.ddp:
            ids = [self.dist.local_rank] if self.device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if args.dp:
            ids = [int(i) for i in args.devices.replace(" ", "").split(",")]
            return nn.DataParallel(model, device_ids=ids)
        return model

    @property
    def bare_model(self):
        return self.model.module if isinstance(self.model, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else self.model

    # ---------------------------------------------------------------- flow
    def run(self):
        args = self.args
        if args.is_training:
            for ii in range(args.itr):
                if ii > 0:
                    self.model = self._build_model()
                setting = make_setting(args, ii)
                if self.dist.is_main:
                    print(f">>>>>>>start training : {setting}>>>>>>>>>>>>>>>>>>>>>>>>>>")
                self.train(checkpoint_path(args, ii))
                self.test(setting)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        else:
            load_checkpoint(self.bare_model, tested_checkpoint(args))
            self.test(args.test_dir)
        shutdown()

    # ---------------------------------------------------------------- training
    def _slice(self, tensor, last_rows=False):
        """The rows and variables that losses and metrics compare (training.md section 4)."""
        args, rows = self.args, self.args.output_token_len
        if args.nonautoregressive or last_rows:
            tensor = tensor[:, -rows:, :]
        if args.covariate:
            tensor = tensor[:, -rows:, -1] if args.last_token else tensor[:, :, -1]
        return tensor

    def _training_loss(self, x, y):
        out = self.model(x)
        if out.logvar is not None:
            return gaussian_nll(self._slice(out.mean), self._slice(out.logvar), self._slice(y), self.args.draft_nll_var_reg)
        return nn.functional.mse_loss(self._slice(out.mean), self._slice(y))

    def _train_epoch(self, loader, optimizer, epoch):
        self.model.train()
        losses, start = [], clock()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}", disable=not self.dist.is_main, leave=False)
        for i, (x, y, _, _) in enumerate(bar):
            optimizer.zero_grad()
            loss = self._training_loss(x.float().to(self.device), y.float().to(self.device))
            value = loss.item()
            check_finite_loss(value, f"training loss of epoch {epoch + 1}, batch {i + 1}", self.checkpoint)
            loss.backward()
            optimizer.step()
            losses.append(value)
            bar.set_postfix(loss=f"{value:.4f}")
            if (i + 1) % 100 == 0 and self.dist.is_main:
                speed = (clock() - start) / (i + 1)
                bar.write(f"\titers: {i + 1}, epoch: {epoch + 1} | loss: {value:.7f}")
                bar.write(f"\tspeed: {speed:.4f}s/iter; left time: {speed * (len(loader) - i - 1):.4f}s")
        return float(np.average(losses))

    @torch.no_grad()
    def vali(self, loader, is_test=False, aligned_test=False):
        """Batch-size weighted MSE of the point forecast, summed over DDP ranks."""
        self.model.eval()
        total, count = 0.0, 0
        horizon = self.args.test_pred_len
        rows = min(self.args.output_token_len, horizon)
        for x, y, _, _ in loader:
            x = x.float().to(self.device)
            output = self.model(x).mean
            y = y.float().to(self.device)
            if aligned_test:  # the first rows of the last label window line up with the last token's forecast
                first = y.shape[1] - horizon
                last = output.shape[1] - self.args.output_token_len
                output, y = self._slice(output[:, last:last + rows]), self._slice(y[:, first:first + rows])
            else:
                output, y = self._slice(output, is_test), self._slice(self._validation_reference(x, y), is_test)
            total += nn.functional.mse_loss(output, y).item() * x.shape[0]
            count += x.shape[0]
        total, count = all_reduce_sum([total, count], self.device)
        self.model.train()
        return total / count

    def _validation_reference(self, x, y):
        """What validation compares the model's forecast of x with: the truth y."""
        return y

    def _save(self, path):
        if self.dist.is_main:
            save_checkpoint(self.bare_model, path)
            # after the weights: a save killed in between leaves the old record, which refuses a mismatched retrain
            write_manifest(os.path.dirname(path), self.args)
        barrier()

    def _optimizer(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.args.learning_rate, weight_decay=self.args.weight_decay)

    def train(self, checkpoint):
        """Train into the checkpoint file `checkpoint` (its folder also holds the manifest and the resume state)."""
        args, rank, world = self.args, self.dist.rank, self.dist.world_size
        self.checkpoint = checkpoint
        resume_file = os.path.join(os.path.dirname(checkpoint), RESUME_FILE)
        loaders = {flag: get_loader(args, self.datasets[flag], flag, rank, world) for flag in ("train", "val", "test")}
        optimizer = self._optimizer()
        stopper = EarlyStopping(args.patience, save=lambda: self._save(checkpoint), verbose=self.dist.is_main)
        first_epoch = self._resume(resume_file, optimizer, stopper, loaders["train"])
        for epoch in tqdm(range(first_epoch, args.train_epochs), desc="epochs", disable=not self.dist.is_main,
                          initial=first_epoch, total=args.train_epochs):
            if hasattr(loaders["train"].sampler, "set_epoch"):
                loaders["train"].sampler.set_epoch(epoch)
            start = clock()
            train_loss = self._train_epoch(loaders["train"], optimizer, epoch)
            vali_loss = self.vali(loaders["val"], is_test=args.valid_last)
            check_finite_loss(vali_loss, f"validation loss of epoch {epoch + 1}", checkpoint)
            test_loss = self.vali(loaders["test"], aligned_test=True)
            if self.dist.is_main:
                print(f"Epoch: {epoch + 1} cost time: {clock() - start:.1f}s")
                print(f"Epoch: {epoch + 1}, Steps: {len(loaders['train'])} | Train Loss: {train_loss:.7f} "
                      f"Vali Loss: {vali_loss:.7f} Test Loss: {test_loss:.7f}")
            stopper(vali_loss)
            if stopper.early_stop:
                if self.dist.is_main:
                    print("Early stopping")
                break
            set_learning_rate(optimizer, learning_rate_at(args, epoch + 1), verbose=self.dist.is_main)
            self._save_resume_state(resume_file, epoch, optimizer, stopper, loaders["train"])
        barrier()
        if self.dist.is_main and os.path.exists(resume_file):
            os.remove(resume_file)
        load_checkpoint(self.bare_model, checkpoint)
        return self.model

    def _random_states(self, loader):
        """The generators that training draws from: the shuffling of the train loader and torch's global one."""
        return {"torch": torch.get_rng_state(), "shuffle": loader.generator.get_state() if loader.generator else None}

    def _set_random_states(self, states, loader):
        torch.set_rng_state(states["torch"])
        if loader.generator is not None:
            loader.generator.set_state(states["shuffle"])

    def _save_resume_state(self, path, epoch, optimizer, stopper, loader):
        """After every finished epoch: what a training killed later needs to go on from the next one."""
        if not self.dist.is_main:
            return
        state = dict(epoch=epoch, model=self.bare_model.state_dict(), optimizer=optimizer.state_dict(),
                     best=stopper.best, counter=stopper.counter, random=self._random_states(loader))
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    def _resume(self, path, optimizer, stopper, loader):
        """The first epoch to train: 0, or the one after the last finished epoch of a training into this folder
        that stopped before its end (its weights, optimiser, early-stopping and random states restored)."""
        if self.args.overwrite_checkpoint or not os.path.isfile(path):
            return 0
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.bare_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stopper.best, stopper.counter = state["best"], state["counter"]
        self._set_random_states(state["random"], loader)
        if self.dist.is_main:
            print(f"resuming from {path}: epochs 1-{state['epoch'] + 1} of {self.args.train_epochs} are done")
        return state["epoch"] + 1

    # ---------------------------------------------------------------- test
    def _target_only(self, model):
        """The target-only decoder of --rollout; with --target_sample it emits mu_p + sigma*eps per patch."""
        args = self.args
        return TargetOnlyDecoder(model, RolloutOptions.of(args),
                                 sample_sigma=args.spec_sigma if args.target_sample else None, seed=args.seed)

    def _begin_test(self, model):
        self.gen_time_s = 0.0
        self.baseline = self._target_only(model)
        self.component_timer = None

    def _warm_up(self, model, x, sample_ids):
        """One untimed run on the first batch, before any timing starts (speculative.md 6)."""
        self.baseline.generate(x, self.args.test_pred_len, sample_ids)
        if self.args.trace_inference_breakdown:
            self.component_timer = ComponentTimer(model)

    def _forecast_batch(self, model, x, sample_ids, batch_index):
        """[B, H, C] forecast of one test batch, timed."""
        pred, seconds = timed(lambda: self.baseline.generate(x, self.args.test_pred_len, sample_ids), x.device)
        self.gen_time_s += seconds
        return pred

    def _score_baseline(self, true):
        """Only a speculative test runs a separate target-only baseline to score."""

    def _report_inference(self, setting, result, n_batches):
        args = self.args
        write_standard_summary(SUMMARY_FILE, setting, result["mse"], result["mae"], self.gen_time_s, n_batches,
                               self.baseline.rollout.label, args.target_sample)
        if self.component_timer:
            write_standard_breakdown(BREAKDOWN_FILE, setting, self.gen_time_s, self.component_timer.calls["blocks"],
                                     self.component_timer.components())
            self.component_timer.close()

    def _test_batches(self, loader):
        """(batch_index, x, y, sample_ids) for the batches the test covers."""
        first = 0
        for i, (x, y, _, _) in enumerate(loader):
            if self.args.test_max_batches is not None and i >= self.args.test_max_batches:
                return
            yield i, x.float().to(self.device), y.float(), list(range(first, first + x.shape[0]))
            first += x.shape[0]

    def _metric_view(self, tensor):
        return tensor[..., -1:] if self.args.covariate else tensor

    @torch.no_grad()
    def test(self, setting):
        if not self.dist.is_main:
            barrier()
            return
        args, horizon = self.args, self.args.test_pred_len
        model = self.bare_model.eval()
        loader = get_loader(args, self.datasets["test"], "test")
        metrics = StreamingMetrics()
        folder = os.path.join("./test_results", setting)
        os.makedirs(folder, exist_ok=True)
        self._begin_test(model)
        n_batches = 0
        bar = tqdm(self._test_batches(loader), total=len(loader), desc="test")
        for i, x, y, sample_ids in bar:
            if i == 0:
                self._warm_up(model, x, sample_ids)
            pred = self._forecast_batch(model, x, sample_ids, i).cpu()
            true = y[:, -horizon:, :]
            metrics.update(self._metric_view(pred).numpy(), self._metric_view(true).numpy())
            self._score_baseline(true)
            n_batches += 1
            bar.set_postfix(self._progress())
            if args.visualize and i % 2 == 0:
                plot_forecast(true[0, :, -1].numpy(), pred[0, :, -1].numpy(), os.path.join(folder, str(horizon), f"{i}.png"),
                              context=x[0, :, -1].cpu().numpy())
        result = metrics.result()
        print(f"mse:{str(result['mse'])}, mae:{str(result['mae'])}")
        if not math.isfinite(result["mse"]):
            raise RunFailure(f"test MSE of {setting} is {result['mse']}: the forecasts hold NaN or infinite values; "
                             f"no result was recorded")
        append_record(FORECAST_RESULT_FILE, forecast_record(setting, result["mse"], result["mae"]))
        self._report_inference(setting, result, n_batches)
        barrier()
        return result

    def _progress(self):
        return {"gen_s": f"{self.gen_time_s:.2f}"}

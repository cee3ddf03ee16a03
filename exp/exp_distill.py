"""Distillation: train the draft (student) on a frozen target's (teacher's) predictions (training.md section 9)."""
import torch
from torch import nn

from exp.exp_forecast import ExpForecast
from layers.instance_norm import rollout_stats
from models import build_model, teacher_config
from models.output import is_one_call
from speculative import RolloutOptions, TargetOnlyDecoder
from utils.checkpoint import load_checkpoint
from utils.losses import gaussian_nll


def build_teacher(args, device):
    key = args.distill_target_model
    teacher = load_checkpoint(build_model(key, teacher_config(key, args)), args.distill_target_ckpt)
    teacher.requires_grad_(False)
    return teacher.to(device).eval()


class ExpDistill(ExpForecast):
    def __init__(self, args):
        super().__init__(args)
        self.one_call = is_one_call(self.bare_model)
        self.teacher = build_teacher(args, self.device)
        self.noise_generator = torch.Generator(device=self.device).manual_seed(args.seed)

    def _random_states(self, loader):
        return {**super()._random_states(loader), "teacher_noise": self.noise_generator.get_state()}

    def _set_random_states(self, states, loader):
        super()._set_random_states(states, loader)
        self.noise_generator.set_state(states["teacher_noise"])

    def _train_epoch(self, loader, optimizer, epoch):
        self.teacher.eval()
        return super()._train_epoch(loader, optimizer, epoch)

    def _teacher_forecast(self, x, stats=None):
        """The teacher's next-token predictions over the window (normalised with `stats`, default its own); for a
        one-call student (TTM), the teacher's own rollout of the K patches after the window: what the draft's
        proposals meet."""
        if not self.one_call:
            return self.teacher(x, stats=stats).mean
        return TargetOnlyDecoder(self.teacher).generate(x, self.bare_model.output_len, range(len(x)))

    def _validation_reference(self, x, y):
        """--distill_vali teacher: the teacher's forecast, so that early stopping keeps the student closest to
        the teacher (what a draft is for); truth (the default): y."""
        return self._teacher_forecast(x) if self.args.distill_vali == "teacher" else y

    def _grown_by_teacher(self, x):
        """x [B, L, C] followed by --distill_rollout_patches patches of the teacher's own cached rollout, and every
        token's normalisation statistics in that rollout (None: the window's own)."""
        n_patches = self.args.distill_rollout_patches
        if not n_patches:
            return x, None
        patches = TargetOnlyDecoder(self.teacher, RolloutOptions("cached")).generate(
            x, n_patches * self.teacher.output_len, range(len(x)))
        grown = torch.cat([x, patches], 1)
        return grown, rollout_stats(grown, x.shape[1], self.teacher.patch_len)

    def _training_loss(self, x, y):
        """The ground truth y is not used: the student fits the teacher's full next-token sequence (a one-call
        student: the teacher's K-patch rollout). With --distill_rollout_patches the sequence is the window grown
        by the teacher's own rollout, every token normalised as the cached rollout does: the contexts a cached
        draft proposes from."""
        with torch.no_grad():
            x, stats = self._grown_by_teacher(x)
            teacher_out = self._teacher_forecast(x, stats)
        out = self.model(x) if stats is None else self.model(x, stats=stats)
        if out.logvar is None:
            return nn.functional.mse_loss(self._slice(out.mean), self._slice(teacher_out))
        noise = torch.randn(teacher_out.shape, generator=self.noise_generator, device=self.device)
        noisy_teacher = teacher_out + self.args.draft_teacher_noise * noise
        return gaussian_nll(self._slice(out.mean), self._slice(out.logvar), self._slice(noisy_teacher),
                            self.args.draft_nll_var_reg)

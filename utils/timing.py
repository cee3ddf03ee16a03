"""The one clock of the project: time.perf_counter, read once the device's queued kernels have run (a CUDA
device is synchronised first, so a reading counts the work queued before it). Stopwatch and timed time a
block or a call; ComponentTimer times the parts of a model's forward through hooks."""
import time
from collections import defaultdict

import torch


def clock(device="cpu"):
    """Seconds of time.perf_counter after synchronising `device` when it is a CUDA device."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class Stopwatch:
    """with Stopwatch(device) as watch: ...   then watch.seconds."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        self.start = clock(self.device)
        return self

    def __exit__(self, *exc):
        self.seconds = clock(self.device) - self.start


def timed(fn, device):
    """(fn(), seconds of the call)."""
    with Stopwatch(device) as watch:
        result = fn()
    return result, watch.seconds


class ComponentTimer:
    """Per-component forward timing of a model through forward hooks (--trace_inference_breakdown).

    Components: norm_in (model entry -> embedding: instance norm and patching), embedding, blocks,
    blocks.attn (all attention layers), blocks.mlp (conv1 entry -> conv2 exit), head, denorm_out
    (head exit -> model exit). Every family has `embedding`, `blocks` and head(s); the attention and
    MLP parts exist only in the attention families (TTM's mixers count in blocks). The model code is untouched;
    close() removes the hooks."""

    def __init__(self, model):
        self.totals = defaultdict(float)
        self.calls = defaultdict(int)
        self._marks = {}
        self._handles = []
        self._device = next(model.parameters()).device
        heads = [module for name, module in model.named_children() if name.startswith("head")]
        self._on(model, pre=lambda: self._mark("model"), post=lambda: self._record("denorm_out", "head_out"))
        self._on(model.embedding, pre=lambda: (self._record("norm_in", "model"), self._mark("embedding")),
                 post=lambda: self._record("embedding", "embedding"))
        self._on(model.blocks, pre=lambda: self._mark("blocks"), post=lambda: self._record("blocks", "blocks"))
        for layer in getattr(model.blocks, "attn_layers", ()):  # attention families only
            self._on(layer.attention, pre=lambda: self._mark("attn"), post=lambda: self._record("blocks.attn", "attn"))
            self._on(layer.conv1, pre=lambda: self._mark("mlp"))
            self._on(layer.conv2, post=lambda: self._record("blocks.mlp", "mlp"))
        self._on(heads[0], pre=lambda: self._mark("head"))
        self._on(heads[-1], post=lambda: (self._record("head", "head"), self._mark("head_out")))

    def _on(self, module, pre=None, post=None):
        def pre_hook(*_):
            pre()

        def post_hook(*_):
            post()

        if pre:
            self._handles.append(module.register_forward_pre_hook(pre_hook))
        if post:
            self._handles.append(module.register_forward_hook(post_hook))

    def _mark(self, name):
        self._marks[name] = clock(self._device)

    def _record(self, name, since):
        self.totals[name] += clock(self._device) - self._marks[since]
        self.calls[name] += 1

    def components(self):
        """{component: (total seconds, number of calls)}."""
        return {name: (total, self.calls[name]) for name, total in self.totals.items()}

    def close(self):
        for handle in self._handles:
            handle.remove()

"""Key/value cache of the `cached` rollout (speculative.md 2.1, model.md 3.5), kept apart from the models.

Per layer, keys and values are stored time-major, [B, T_cap, C, H, E]: slot t of every sample holds
the tokens of time index t, one per variable. Each sample has its own length (time steps held), so a
ragged batch appends at per-sample offsets and is cropped per sample. A token's labels are its slot
(time) and its variable, so a new query attends to cached keys through the same label-based mask as
in a full forward: keys at or beyond a sample's length have a later time than any of its queries and
are masked by causality, never read. Stale slots keep finite values (zeros or an older key), so a
masked slot cannot turn an output into NaN.

The cache holds keys and values only: the normalisation statistics of the steps fed are the caller's
(speculative/cached.py), given with each call.

Protocol: a model reads `lengths` to label its new tokens, the decoder stack reads `key_steps` once
per call, each attention layer calls `update` (which writes at `lengths` and returns every key up to
the call's end), and the decoder stack calls `extend` once after its last layer.
"""
import copy

import torch


class KVCache:
    def __init__(self, n_layers, window=0):
        """window > 0 (--cache_max_tokens): a new query sees only the last `window` time steps."""
        self.keys = [None] * n_layers
        self.values = [None] * n_layers
        self.lengths = None       # [B] long, time steps held per sample
        self.window = window

    def start_times(self, batch, device):
        """Time index of the first new token of each sample: [B] (zeros for an empty cache)."""
        if self.lengths is None:
            self.lengths = torch.zeros(batch, dtype=torch.long, device=device)
        return self.lengths

    def key_steps(self, n_new):
        """The slots the keys of a call feeding n_new steps span: the longest new end. Read once per call
        (the call's one host-device synchronisation)."""
        return int(self.lengths.max()) + n_new

    def update(self, layer, key, value, end):
        """Write key/value [B, T_new, C, H, E] at each sample's length; return the layer's keys and
        values [B, end, C, H, E] (end: key_steps of this call)."""
        n_new = key.shape[1]
        self.keys[layer] = self._grown(self.keys[layer], key, end)
        self.values[layer] = self._grown(self.values[layer], value, end)
        rows = torch.arange(len(self.lengths), device=key.device)[:, None]
        slots = self.lengths[:, None] + torch.arange(n_new, device=key.device)
        self.keys[layer][rows, slots] = key
        self.values[layer][rows, slots] = value
        return self.keys[layer][:, :end], self.values[layer][:, :end]

    @staticmethod
    def _grown(store, like, end):
        """`store` with room for `end` slots (doubling), zero-filled; a new one shaped like `like`."""
        if store is not None and store.shape[1] >= end:
            return store
        capacity = max(end, 2 * (0 if store is None else store.shape[1]))
        grown = like.new_zeros(((store if store is not None else like).shape[0], capacity) + like.shape[2:])
        if store is not None:
            grown[:, :store.shape[1]] = store
        return grown

    def extend(self, n_new):
        """After the last layer: every sample now holds n_new more time steps."""
        self.lengths = self.lengths + n_new

    def crop(self, lengths):
        """Forget each sample's time steps from lengths[b] on; a crop never lengthens a sample (checked on the
        device: no synchronisation)."""
        self.lengths = torch.minimum(torch.as_tensor(lengths, device=self.lengths.device), self.lengths)

    def subset(self, rows):
        """A copy of the samples `rows` alone, to feed only them; merge(rows, part) writes it back."""
        part = copy.copy(self)
        part.select(rows)
        return part

    def merge(self, rows, part):
        """Write back the samples `rows` of part = subset(rows), after it was fed."""
        for stores, fed in ((self.keys, part.keys), (self.values, part.values)):
            for layer, store in enumerate(stores):
                stores[layer] = self._grown(store, fed[layer], fed[layer].shape[1])
                stores[layer][rows, :fed[layer].shape[1]] = fed[layer]
        self.lengths = self.lengths.index_put((rows,), part.lengths)

    def select(self, rows):
        """Keep only the samples `rows` (in that order): finished samples leave the batch."""
        rows = torch.as_tensor(rows, device=self.lengths.device)
        self.keys = [None if k is None else k[rows] for k in self.keys]
        self.values = [None if v is None else v[rows] for v in self.values]
        self.lengths = self.lengths[rows]

"""Window datasets: benchmark files (multivariate / univariate) and a folder of files (data.md, sections 6-9)."""
import bisect
import os
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from data_provider.readers import read_series
from data_provider.splits import FLAGS, StandardScaler, count_windows, file_stem, split_borders, utsd_split_borders


def check_subset_ratio(ratio):
    if not 0 < ratio <= 1:
        raise ValueError(f"--subset_rand_ratio must be in (0, 1], got {ratio}")


def draw_subset(n_windows, ratio, seed):
    """Sorted distinct random window indices for --subset_rand_ratio, or None for all windows."""
    if ratio == 1:
        return None
    rng = np.random.default_rng(seed)
    size = max(int(n_windows * ratio), 1)
    return np.sort(rng.choice(n_windows, size=size, replace=False))


def make_sample(data, s, L, P, O_ds, nonautoregressive):
    """(seq_x, seq_y, seq_x_mark, seq_y_mark) for the window starting at row s of `data` [rows, C]."""
    seq_x = data[s:s + L]
    if nonautoregressive:
        seq_y = data[s + L:s + L + O_ds]
    else:
        # Unfolded labels: token k is followed by rows [s + (k+1)P, s + (k+1)P + O_ds).
        label_starts = s + P * np.arange(1, L // P + 1)
        seq_y = data[(label_starts[:, None] + np.arange(O_ds)).reshape(-1)]
    seq_x_mark = np.zeros((L, 1), dtype=np.float32)
    seq_y_mark = np.zeros((L, 1), dtype=np.float32)
    return seq_x.astype(np.float32), seq_y.astype(np.float32), seq_x_mark, seq_y_mark


class WindowDataset(Dataset):
    """Common part: size triple, flag check, optional random subset of the train windows, length print."""

    def __init__(self, flag, size, nonautoregressive, subset_rand_ratio, seed):
        if flag not in FLAGS:
            raise ValueError(f"unknown split flag {flag!r} (expected one of {', '.join(FLAGS)})")
        check_subset_ratio(subset_rand_ratio)
        self.subset_rand_ratio, self.seed = subset_rand_ratio, seed
        self.flag = flag
        self.seq_len, self.input_token_len, self.output_token_len = size
        self.nonautoregressive = nonautoregressive

    def select_windows(self):
        """Call once the windows are known: fixes the train subset and prints the length."""
        self.subset = None
        if self.flag == 'train':
            self.subset = draw_subset(self.num_windows(), self.subset_rand_ratio, self.seed)
        print(f"{self.flag} {len(self)}")

    def num_windows(self):
        raise NotImplementedError

    def read_window(self, index):
        raise NotImplementedError

    def sample(self, data, s):
        return make_sample(data, s, self.seq_len, self.input_token_len, self.output_token_len, self.nonautoregressive)

    def __len__(self):
        return self.num_windows() if self.subset is None else len(self.subset)

    def __getitem__(self, index):
        return self.read_window(index if self.subset is None else int(self.subset[index]))


class BenchmarkDataset(WindowDataset):
    """One benchmark file, split by its stem and scaled with train statistics."""

    def __init__(self, root_path, data_path, flag='train', size=None, nonautoregressive=False,
                 subset_rand_ratio=1.0, seed=2021):
        super().__init__(flag, size, nonautoregressive, subset_rand_ratio, seed)
        self.path = os.path.join(root_path, data_path)
        raw = read_series(self.path)
        L, O_ds = self.seq_len, self.output_token_len
        borders = split_borders(file_stem(data_path), len(raw), L)
        start, end = borders[flag]
        self.n_timepoints = count_windows(start, end, len(raw), L, O_ds)
        if self.n_timepoints < 1:
            raise ValueError(f"{self.path}: split '{flag}' rows [{start}, {end}) hold no window of "
                             f"L={L} + O_ds={O_ds} (file has {len(raw)} rows)")
        self.scaler = StandardScaler().fit(raw[:borders['train'][1]])
        self.data_x = self.data_y = self.scaler.transform(raw)[start:end].astype(np.float32)
        self.n_vars = raw.shape[1]
        self.select_windows()


class MultivariateDatasetBenchmark(BenchmarkDataset):
    """Samples [L, C]: all variables of one window."""

    def num_windows(self):
        return self.n_timepoints

    def read_window(self, index):
        return self.sample(self.data_x, index)


class UnivariateDatasetBenchmark(BenchmarkDataset):
    """Samples [L, 1]: variable c = index // n_tp of window s = index % n_tp."""

    def num_windows(self):
        return self.n_vars * self.n_timepoints

    def read_window(self, index):
        c, s = divmod(index, self.n_timepoints)
        return self.sample(self.data_x[:, c:c + 1], s)


class UtsdDataset(WindowDataset):
    """Every .csv/.npy under root_path (recursively), split 90/5/5 and scaled per file; samples [L, 1].

    data_path is ignored."""

    def __init__(self, root_path, data_path=None, flag='train', size=None, nonautoregressive=False,
                 subset_rand_ratio=1.0, seed=2021):
        super().__init__(flag, size, nonautoregressive, subset_rand_ratio, seed)
        L, O_ds = self.seq_len, self.output_token_len
        root = Path(root_path)
        paths = sorted((p for p in root.rglob('*') if p.suffix in ('.csv', '.npy') and p.is_file()),
                       key=lambda p: p.relative_to(root).as_posix())
        if not paths:
            raise ValueError(f"{root_path}: no .csv or .npy files found")
        self.series, self.n_timepoints, window_counts, skipped = [], [], [], []
        for path in paths:
            raw = read_series(path)
            borders = utsd_split_borders(len(raw), L)
            train_end = borders['train'][1]
            if train_end < L + O_ds:
                skipped.append(path.relative_to(root).as_posix())
                continue
            start, end = borders[flag]
            n_tp = count_windows(start, end, len(raw), L, O_ds)
            if n_tp < 1:
                continue
            scaled = StandardScaler().fit(raw[:train_end]).transform(raw)
            self.series.append(scaled[start:end].astype(np.float32))
            self.n_timepoints.append(n_tp)
            window_counts.append(raw.shape[1] * n_tp)
        if skipped:
            print(f"Utsd: skipped {len(skipped)} file(s) with fewer than L + O_ds = {L + O_ds} train rows: "
                  f"{', '.join(skipped)}")
        if not window_counts:
            raise ValueError(f"{root_path}: split '{flag}' has no window of L={L} + O_ds={O_ds} in any file")
        self.file_starts = np.concatenate([[0], np.cumsum(window_counts)]).tolist()
        self.select_windows()

    def num_windows(self):
        return self.file_starts[-1]

    def read_window(self, index):
        file_index = bisect.bisect_right(self.file_starts, index) - 1
        c, s = divmod(index - self.file_starts[file_index], self.n_timepoints[file_index])
        return self.sample(self.series[file_index][:, c:c + 1], s)

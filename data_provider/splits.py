"""Train/val/test borders and the scaler: the split rule lives here and nowhere else (data.md, sections 4-5)."""
import os

import numpy as np

FLAGS = ('train', 'val', 'test')

# ETT: 12 / 4 / 4 months of 30 days; the ends of train, val and test in rows.
ETT_SPLIT_ENDS = {
    'ETTh': (12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24),
    'ETTm': (12 * 30 * 24 * 4, 16 * 30 * 24 * 4, 20 * 30 * 24 * 4),
}
ETT_STEMS = {'ETTh': 'ETTh', 'ETTh1': 'ETTh', 'ETTh2': 'ETTh', 'ETTm': 'ETTm', 'ETTm1': 'ETTm', 'ETTm2': 'ETTm'}


def file_stem(data_path):
    """Base name up to the first '.', e.g. 'ETT-small/ETTh1.csv' -> 'ETTh1'."""
    return os.path.basename(data_path).split('.')[0]


def split_borders(stem, T, L):
    """flag -> (start, end) rows of a benchmark file with T rows; val/test starts are pulled back by L."""
    if stem in ETT_STEMS:
        train_end, val_end, test_end = ETT_SPLIT_ENDS[ETT_STEMS[stem]]
        return {'train': (0, train_end), 'val': (train_end - L, val_end), 'test': (val_end - L, test_end)}
    return fraction_borders(T, L, train_fraction=0.7, test_fraction=0.2)


def utsd_split_borders(T, L):
    """The 90/5/5 variant used per file by the folder-of-files dataset (data.md, section 9)."""
    return fraction_borders(T, L, train_fraction=0.9, test_fraction=0.05)


def fraction_borders(T, L, train_fraction, test_fraction):
    n_train = int(train_fraction * T)
    n_test = int(test_fraction * T)
    n_val = T - n_train - n_test
    return {'train': (0, n_train), 'val': (n_train - L, n_train + n_val), 'test': (T - n_test - L, T)}


def count_windows(start, end, T, L, O_ds):
    """Stride-1 window starts in rows [start, end) of a T-row file: n_tp; 0 if the start is negative."""
    if start < 0:
        return 0
    return max(min(end, T) - start - L - O_ds + 1, 0)


class StandardScaler:
    """Per-column standardisation in float64 with the population std (ddof 0)."""

    def fit(self, data):
        data = np.asarray(data, dtype=np.float64)
        self.mean = data.mean(axis=0)
        std = data.std(axis=0)
        # A constant column gets scale 1 (as scikit-learn); testing max == min avoids a rounding-noise std.
        self.constant = data.max(axis=0) == data.min(axis=0)
        self.scale = np.where(self.constant, 1.0, std)
        return self

    def transform(self, data):
        return (np.asarray(data, dtype=np.float64) - self.mean) / self.scale

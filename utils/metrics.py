"""Forecast metrics on the z-scale, accumulated batch by batch (large test sets never sit in memory)."""
import numpy as np


class StreamingMetrics:
    def __init__(self):
        self.sums = dict(mae=0.0, mse=0.0, mape=0.0, mspe=0.0)
        self.count = 0

    def update(self, pred, true):
        pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
        error = pred - true
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = error / true
        self.sums["mae"] += np.abs(error).sum()
        self.sums["mse"] += np.square(error).sum()
        self.sums["mape"] += np.abs(relative).sum()
        self.sums["mspe"] += np.square(relative).sum()
        self.count += error.size

    def result(self):
        """Means as NumPy float32, so str() prints them as OpenLTM did."""
        means = {k: np.float32(v / self.count) for k, v in self.sums.items()}
        means["rmse"] = np.float32(np.sqrt(means["mse"]))
        return means

"""The data a run reads: the file or folder exists, holds a target column, its splits fit the windows, scaling
keeps its columns apart, and its variables are those a channel-mixing model was built for."""
import os

import numpy as np
import pandas as pd

from cli.checks.sizes import built_shapes
from data_provider.data_factory import DATA_DICT, reads_a_folder
from data_provider.data_loader import MultivariateDatasetBenchmark
from data_provider.readers import READERS, DataFileError, read_named_series
from data_provider.splits import StandardScaler, count_windows, file_stem, split_borders
from utils.failures import UsageError

TARGET_COLUMN = "OT"


def check_data(args):
    if reads_a_folder(args.data):
        check_data_folder(args.root_path)
        check_variables(args, 1, f"the files under --root_path {args.root_path}")
    else:
        check_data_file(args)


def check_data_file(args):
    path = os.path.join(args.root_path, args.data_path)
    if not os.path.isdir(args.root_path):
        raise UsageError(f"--root_path {args.root_path}: no such folder")
    if not os.path.isfile(path):
        raise UsageError(f"--data_path {args.data_path}: no file {path} ({files_in(args.root_path)})")
    try:
        values, column_names = read_named_series(path)
    except DataFileError as error:
        raise UsageError(f"--data_path: {error}") from None
    if path.endswith(".csv"):
        check_target_column(path, args.covariate)
    for flag in ("train", "val", "test") if args.is_training else ("test",):
        check_split_fits(args, path, len(values), flag)
    if args.use_speculative and args.spec_mse_budget is not None:
        check_calibration_split(args, path, len(values))
    check_scaling(values, column_names, split_borders(file_stem(args.data_path), len(values), args.seq_len)["train"][1],
                  path)
    multivariate = DATA_DICT[args.data] is MultivariateDatasetBenchmark
    check_variables(args, values.shape[1] if multivariate else 1, f"--data {args.data} --data_path {path}")


def check_variables(args, n_vars, data):
    """A model built for a fixed number of variables (a channel-mixing TTM, --n_vars) gets windows of n_vars."""
    for key in [args.model] + ([args.spec_draft_model] if args.use_speculative else []):
        fixed = getattr(built_shapes(key, args), "n_vars", None)
        if fixed is not None and fixed != n_vars:
            raise UsageError(f"--n_vars {fixed} does not match the {n_vars} variable(s) per window of {data}: "
                             f"{key} mixes channels over exactly --n_vars variables")


def files_in(folder):
    names = sorted(n for n in os.listdir(folder) if os.path.splitext(n)[1] in READERS)
    return f"data files there: {', '.join(names)}" if names else "the folder holds no .csv, .txt, .npz or .npy file"


def check_data_folder(root):
    if not os.path.isdir(root):
        raise UsageError(f"--root_path {root}: no such folder")
    for _, _, names in os.walk(root):
        if any(n.endswith((".csv", ".npy")) for n in names):
            return
    raise UsageError(f"--root_path {root}: no .csv or .npy file in it or below it")


def check_target_column(path, covariate):
    columns = list(pd.read_csv(path, nrows=0, encoding="utf-8").columns)
    if TARGET_COLUMN not in columns:
        raise UsageError(f"--data_path: {path} has no target column '{TARGET_COLUMN}' (columns: "
                         f"{', '.join(map(str, columns))})")
    if covariate and columns[-1] != TARGET_COLUMN:
        raise UsageError(f"--covariate predicts the last column, but the last column of {path} is "
                         f"'{columns[-1]}', not '{TARGET_COLUMN}'")


def check_scaling(values, column_names, train_end, path):
    """The loaders standardise every column with its train-split statistics and compute in float32: a series that
    is constant throughout has nothing to learn, and a column whose std an outlier sets so high that most of its
    other values become equal in float32 would be learnt as a flat line."""
    scaler = StandardScaler().fit(values[:train_end])
    if scaler.constant.all():
        raise UsageError(f"--data_path: every column of {path} is constant over its train split (rows 0 to "
                         f"{min(train_end, len(values))}): there is nothing to forecast")
    scaled = scaler.transform(values).astype("float32")
    kept, raw = distinct_counts(scaled), distinct_counts(values)
    for col in range(values.shape[1]):
        if kept[col] < raw[col] / 2:
            row = int(abs(scaled[:, col]).argmax())
            raise UsageError(f"--data_path: column '{column_names[col]}' of {path} is squashed by scaling: an "
                             f"outlier ({values[row, col]:g} at data row {row}) sets its std to "
                             f"{scaler.scale[col]:.3g}, so most of its other values become equal in float32; "
                             f"fix or remove the outlier")


def distinct_counts(matrix):
    ordered = np.sort(matrix, axis=0)
    return (np.diff(ordered, axis=0) != 0).sum(axis=0) + 1


def check_calibration_split(args, path, rows):
    start, end = split_borders(file_stem(args.data_path), rows, args.test_seq_len)["val"]
    if count_windows(start, end, rows, args.test_seq_len, args.test_pred_len) < 1:
        raise UsageError(f"--spec_mse_budget calibrates on the validation split, and that of {path} holds no window "
                         f"of --test_seq_len {args.test_seq_len} + --test_pred_len {args.test_pred_len}")


def check_split_fits(args, path, rows, flag):
    length_flag, horizon_flag = ("test_seq_len", "test_pred_len") if flag == "test" else ("seq_len", "output_token_len")
    length, horizon = getattr(args, length_flag), getattr(args, horizon_flag)
    start, end = split_borders(file_stem(args.data_path), rows, length)[flag]
    if count_windows(start, end, rows, length, horizon) >= 1:
        return
    room = min(end, rows) - start - length if start >= 0 else 0  # rows left for the horizon after one context
    if flag == "test" and room >= 1:
        raise UsageError(f"--test_pred_len {horizon} is longer than the test split of {path} allows after "
                         f"--test_seq_len {length}: the longest that fits is {room}")
    raise UsageError(f"{path} has too few rows ({rows}): its {flag} split (rows {start} to {min(end, rows)}) holds "
                     f"no window of --{length_flag} {length} + --{horizon_flag} {horizon}")

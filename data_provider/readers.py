"""Read one benchmark file into a float64 array [T, C] (data.md, section 3)."""
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd


class DataFileError(ValueError):
    """The content of a data file cannot be used (the message names the file and, where it can, column and row)."""


# A .csv's first column is its date column when its header names it so, whatever its cells hold: judged by its
# cells, integer timestamps would be read as a variable, and a variable with one malformed cell dropped as dates.
DATE_COLUMN_NAMES = ('date', 'datetime', 'time', 'timestamp')
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the models compute in float32


def read_series(path) -> np.ndarray:
    """Return the numeric content of `path` as float64 [T, C]; the reader is chosen by extension."""
    return read_named_series(path)[0]


def read_named_series(path):
    """(read_series(path), the names of its C columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    reader = READERS.get(path.suffix)
    if reader is None:
        raise DataFileError(f"{path}: unsupported extension '{path.suffix}' (expected one of {', '.join(READERS)})")
    values, column_names = reader(path)
    check_finite(values, column_names, path)
    return values, column_names


def read_csv(path):
    frame = read_frame(path, header=0)
    check_header(frame.columns, path)
    if len(frame) == 0:
        raise DataFileError(f"{path}: no data rows")
    if is_date_column(frame.columns[0]):
        frame = frame.iloc[:, 1:]
    return numeric_matrix(frame, path)


def is_date_column(name):
    return str(name).strip().lower() in DATE_COLUMN_NAMES


def read_txt(path):
    return numeric_matrix(read_frame(path, header=None), path)


def read_frame(path, header):
    try:
        return pd.read_csv(path, header=header, skip_blank_lines=True, encoding='utf-8')
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataFileError(f"{path}: not a comma-separated UTF-8 text file ({str(error).strip()})") from None


def check_header(names, path):
    """A first row of numbers is data, not a header (the date column, if any, may hold anything)."""
    value_names = pd.Series(names[1:] if len(names) > 1 else names, dtype=object)
    if pd.to_numeric(value_names, errors='coerce').notna().all():
        raise DataFileError(f"{path}: the first row ({', '.join(map(str, names[:4]))}, ...) is numbers, not a header; "
                            f"a .csv needs a header row such as date,...,OT")


def load_numpy(path):
    try:
        return np.load(path)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{path}: not a readable NumPy file ({error})") from None


def read_npz(path):
    with load_numpy(path) as archive:
        if 'data' not in archive:
            raise DataFileError(f"{path}: no array under key 'data' (keys: {', '.join(archive.files)})")
        array = archive['data']
    if array.ndim == 3:
        array = array[:, :, 0]  # feature 0 is the traffic flow
    if array.ndim != 2:
        raise DataFileError(f"{path}: expected 'data' of shape [T, nodes, F] or [T, nodes], got {array.shape}")
    return numeric_array(array, path)


def read_npy(path):
    array = load_numpy(path)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataFileError(f"{path}: expected a 1-D or 2-D array, got shape {array.shape}")
    return numeric_array(array, path)


READERS = {'.csv': read_csv, '.txt': read_txt, '.npz': read_npz, '.npy': read_npy}


def numeric_matrix(frame, path):
    """Convert every column of `frame` to float64; a value that is not a number is an error."""
    if frame.shape[1] == 0:
        raise DataFileError(f"{path}: no data columns")
    columns = []
    for name in frame.columns:
        column = frame[name]
        numbers = pd.to_numeric(column, errors='coerce')
        not_numbers = numbers.isna() & column.notna()
        if not_numbers.any():
            row = int(np.argmax(not_numbers.to_numpy()))
            hint = (f" (a date column is recognised by its name: {', '.join(DATE_COLUMN_NAMES)})"
                    if name == frame.columns[0] else "")
            raise DataFileError(f"{path}: column '{name}' has a non-numeric value {column.iloc[row]!r} at data row "
                                f"{row}{hint}")
        columns.append(numbers.to_numpy(dtype=np.float64))
    return np.stack(columns, axis=1), list(frame.columns)


def numeric_array(array, path):
    if not np.issubdtype(array.dtype, np.number):
        raise DataFileError(f"{path}: array has non-numeric dtype {array.dtype}")
    return array.astype(np.float64), list(range(array.shape[1]))


def check_finite(values, column_names, path):
    finite = np.isfinite(values)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        what = "an empty or NaN" if np.isnan(values[row, col]) else f"an infinite ({values[row, col]})"
        raise DataFileError(f"{path}: column '{column_names[col]}' has {what} value at data row {row}")
    too_large = np.abs(values) > FLOAT32_MAX
    if too_large.any():
        row, col = np.argwhere(too_large)[0]
        raise DataFileError(f"{path}: column '{column_names[col]}' has {values[row, col]:g} at data row {row}, "
                            f"beyond the float32 range (+-{FLOAT32_MAX:.3g}) the models compute in")

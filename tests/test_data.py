"""Data pipeline tests (data.md, section 12). Offline benchmark files are skipped if the mirror is absent."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset, DistributedSampler, Subset

from conftest import DATASETS, ETT_ROOT
from data_provider.data_factory import DATA_DICT, data_provider, get_dataset, get_loader
from data_provider.data_loader import MultivariateDatasetBenchmark, UnivariateDatasetBenchmark, UtsdDataset
from data_provider.readers import read_series
from data_provider.splits import StandardScaler, split_borders, utsd_split_borders

BENCHMARK_CLASSES = [MultivariateDatasetBenchmark, UnivariateDatasetBenchmark]


def build(cls, root, data_path, flag, L=672, P=96, O_ds=96, **kwargs):
    return cls(str(root), data_path, flag, size=[L, P, O_ds], **kwargs)


def windows_of(cls, n_tp, n_vars):
    return n_tp * (n_vars if cls is UnivariateDatasetBenchmark else 1)


def expected_label(data, s, L, P, O_ds):
    return np.concatenate([data[s + (k + 1) * P:s + (k + 1) * P + O_ds] for k in range(L // P)])


# ---- 1. offline file shapes -------------------------------------------------------------------------

@pytest.mark.data
@pytest.mark.parametrize('relpath, shape', [
    ('ETT-small/ETTh1.csv', (17420, 7)), ('ETT-small/ETTh2.csv', (17420, 7)),
    ('ETT-small/ETTm1.csv', (69680, 7)), ('ETT-small/ETTm2.csv', (69680, 7)),
    ('weather/weather.csv', (52696, 21)), ('exchange_rate/exchange_rate.csv', (7588, 8)),
    ('illness/national_illness.csv', (966, 7)),
])
def test_offline_file_shape_without_date(relpath, shape):
    data = read_series(DATASETS / relpath)
    assert data.shape == shape and data.dtype == np.float64
    last_column = pd.read_csv(DATASETS / relpath, encoding='utf-8').iloc[:, -1]  # OT, a numeric column
    np.testing.assert_array_equal(data[:, -1], last_column.to_numpy(dtype=np.float64))


# ---- 2. split borders and window counts -------------------------------------------------------------

def test_split_borders_ett_and_general():
    assert split_borders('ETTh1', 17420, 672) == {'train': (0, 8640), 'val': (7968, 11520), 'test': (10848, 14400)}
    assert split_borders('ETTm2', 69680, 672) == {'train': (0, 34560), 'val': (33888, 46080), 'test': (45408, 57600)}
    assert split_borders('weather', 52696, 672) == {'train': (0, 36887), 'val': (36215, 42157),
                                                    'test': (41485, 52696)}
    assert utsd_split_borders(1000, 10) == {'train': (0, 900), 'val': (890, 950), 'test': (940, 1000)}


@pytest.mark.data
@pytest.mark.parametrize('cls', BENCHMARK_CLASSES)
def test_etth1_counts(cls):
    train = build(cls, ETT_ROOT, 'ETTh1.csv', 'train')
    val = build(cls, ETT_ROOT, 'ETTh1.csv', 'val')
    assert (len(train.data_x), len(val.data_x)) == (8640, 3552)
    assert (len(train), len(val)) == (windows_of(cls, 7873, 7), windows_of(cls, 2785, 7))
    for H, count in [(96, 2785), (192, 2689), (336, 2545), (720, 2161)]:
        test = build(cls, ETT_ROOT, 'ETTh1.csv', 'test', O_ds=H)
        assert len(test.data_x) == 3552 and len(test) == windows_of(cls, count, 7)
    if cls is UnivariateDatasetBenchmark:
        assert len(train) == 55111


@pytest.mark.data
@pytest.mark.parametrize('cls', BENCHMARK_CLASSES)
def test_ettm1_counts(cls):
    counts = [len(build(cls, ETT_ROOT, 'ETTm1.csv', flag)) for flag in ('train', 'val', 'test')]
    assert counts == [windows_of(cls, n, 7) for n in (33793, 11425, 11425)]


@pytest.mark.data
def test_weather_split_counts():
    datasets = {flag: build(MultivariateDatasetBenchmark, DATASETS / 'weather', 'weather.csv', flag)
                for flag in ('train', 'val', 'test')}
    assert datasets['train'].n_vars == 21
    # n_tr / n_va / n_te = 36887 / 5270 / 10539; val and test are pulled back by L = 672
    assert [len(d.data_x) for d in datasets.values()] == [36887, 5270 + 672, 10539 + 672]
    assert [len(d) for d in datasets.values()] == [36887 - 767, 5270 - 95, 10539 - 95]


# ---- 3. labels -------------------------------------------------------------------------------------

@pytest.mark.data
def test_test_label_layout_and_true_future():
    L, P, H = 672, 96, 192
    dataset = build(MultivariateDatasetBenchmark, ETT_ROOT, 'ETTh1.csv', 'test', O_ds=H)
    data_y = dataset.data_y
    for s in (0, 1234, len(dataset) - 1):
        seq_x, seq_y, seq_x_mark, seq_y_mark = dataset[s]
        assert seq_y.shape == (7 * H, 7) and seq_x.dtype == seq_y.dtype == np.float32
        for k in range(L // P):
            for t in (0, 1, H - 1):
                np.testing.assert_array_equal(seq_y[k * H + t], data_y[s + (k + 1) * P + t])
        np.testing.assert_array_equal(seq_y, expected_label(data_y, s, L, P, H))
        np.testing.assert_array_equal(seq_y[-H:], data_y[s + L:s + L + H])
        np.testing.assert_array_equal(seq_x, data_y[s:s + L])
        assert seq_x_mark.shape == seq_y_mark.shape == (L, 1) and not seq_x_mark.any() and not seq_y_mark.any()


@pytest.mark.data
def test_train_label_is_contiguous_and_nonautoregressive_is_next_block():
    dataset = build(MultivariateDatasetBenchmark, ETT_ROOT, 'ETTh1.csv', 'train')
    seq_x, seq_y, _, _ = dataset[100]
    np.testing.assert_array_equal(seq_y, dataset.data_y[100 + 96:100 + 672 + 96])
    dataset = build(MultivariateDatasetBenchmark, ETT_ROOT, 'ETTh1.csv', 'test', O_ds=336, nonautoregressive=True)
    _, seq_y, _, _ = dataset[7]
    np.testing.assert_array_equal(seq_y, dataset.data_y[7 + 672:7 + 672 + 336])


@pytest.mark.data
def test_univariate_index_maps_to_variable_and_start():
    dataset = build(UnivariateDatasetBenchmark, ETT_ROOT, 'ETTh1.csv', 'test', O_ds=192)
    n_tp = dataset.n_timepoints
    for c, s in [(0, 0), (3, 17), (6, n_tp - 1)]:
        seq_x, seq_y, _, _ = dataset[c * n_tp + s]
        column = dataset.data_y[:, c:c + 1]
        np.testing.assert_array_equal(seq_x, column[s:s + 672])
        np.testing.assert_array_equal(seq_y, expected_label(column, s, 672, 96, 192))


# ---- 4. scaler -------------------------------------------------------------------------------------

@pytest.mark.data
def test_scaler_fits_train_slice_and_is_reused_for_val_and_test():
    raw = read_series(ETT_ROOT / 'ETTh1.csv')
    train = build(MultivariateDatasetBenchmark, ETT_ROOT, 'ETTh1.csv', 'train')
    np.testing.assert_allclose(train.data_x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.data_x.astype(np.float64).std(axis=0), 1, atol=1e-5)
    mean, std = raw[:8640].mean(axis=0), raw[:8640].std(axis=0)
    for flag, (start, end) in [('val', (7968, 11520)), ('test', (10848, 14400))]:
        dataset = build(MultivariateDatasetBenchmark, ETT_ROOT, 'ETTh1.csv', flag)
        np.testing.assert_allclose(dataset.data_x, (raw[start:end] - mean) / std, rtol=1e-6, atol=1e-6)


def test_standard_scaler_population_std_and_constant_column():
    data = np.array([[1.0, 5.0, 0.1], [3.0, 5.0, 0.1], [8.0, 5.0, 0.1]])
    scaler = StandardScaler().fit(data)
    np.testing.assert_allclose(scaler.scale[0], np.sqrt(((data[:, 0] - 4) ** 2).mean()))
    assert scaler.scale[1] == scaler.scale[2] == 1.0
    scaled = scaler.transform(data)
    np.testing.assert_allclose(scaled[:, 1:], 0, atol=1e-15)
    np.testing.assert_allclose(scaled[:, 0], (data[:, 0] - 4) / scaler.scale[0])


# ---- 5. reader formats on generated files ----------------------------------------------------------

T_GEN, C_GEN = 200, 5  # 70/10/20 -> 140 / 20 / 40 rows


def random_matrix(T=T_GEN, C=C_GEN, seed=0):
    return np.random.default_rng(seed).normal(size=(T, C)).round(6)


def write_wide_csv(path, values):
    frame = pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1] - 1)] + ['OT'])
    frame.insert(0, 'date', pd.date_range('2016-07-01', periods=len(values), freq='h').astype(str))
    frame.to_csv(path, index=False)


def write_generated(folder, kind, values):
    """Write `values` [T, C] in format `kind`; return (file name, the array the reader must return)."""
    if kind == 'csv':
        write_wide_csv(folder / 'electricity.csv', values)
        return 'electricity.csv', values
    if kind == 'txt':
        text = '\n'.join(','.join(map(str, row)) for row in values.tolist())
        (folder / 'solar_AL.txt').write_text(text + '\n\n')
        return 'solar_AL.txt', values
    if kind == 'npz':
        stacked = np.stack([values, values + 100, -values], axis=2)  # [T, nodes, F=3]; feature 0 is kept
        np.savez(folder / 'PEMS08.npz', data=stacked)
        return 'PEMS08.npz', values
    np.save(folder / 'series.npy', values)
    return 'series.npy', values


@pytest.mark.parametrize('kind', ['csv', 'txt', 'npz', 'npy'])
def test_reader_formats(tmp_path, kind):
    name, expected = write_generated(tmp_path, kind, random_matrix())
    data = read_series(tmp_path / name)
    assert data.shape == (T_GEN, C_GEN) and data.dtype == np.float64
    np.testing.assert_allclose(data, expected, rtol=1e-12)  # pandas' default float parser may differ by an ulp


def test_csv_keeps_a_numeric_first_column_and_npy_1d_becomes_a_column(tmp_path):
    values = random_matrix(T=10, C=3)
    pd.DataFrame(values, columns=['a', 'b', 'OT']).to_csv(tmp_path / 'plain.csv', index=False)
    np.testing.assert_array_equal(read_series(tmp_path / 'plain.csv'), values)
    write_wide_csv(tmp_path / 'two_rows.csv', values[:2])  # fewer than 3 rows: row 0 decides
    np.testing.assert_array_equal(read_series(tmp_path / 'two_rows.csv'), values[:2])
    np.save(tmp_path / 'one.npy', values[:, 0])
    np.testing.assert_array_equal(read_series(tmp_path / 'one.npy'), values[:, :1])
    np.savez(tmp_path / 'flat.npz', data=values)
    np.testing.assert_array_equal(read_series(tmp_path / 'flat.npz'), values)


@pytest.mark.parametrize('kind', ['csv', 'txt', 'npz', 'npy'])
@pytest.mark.parametrize('cls', BENCHMARK_CLASSES)
def test_general_split_on_generated_files(tmp_path, kind, cls):
    L, P, O_ds = 16, 8, 8
    name, values = write_generated(tmp_path, kind, random_matrix())
    expected_rows = {'train': 140, 'val': 20 + L, 'test': 40 + L}
    scaled = (values - values[:140].mean(axis=0)) / values[:140].std(axis=0)
    for flag, start in [('train', 0), ('val', 140 - L), ('test', 200 - 40 - L)]:
        dataset = build(cls, tmp_path, name, flag, L, P, O_ds)
        assert len(dataset.data_x) == expected_rows[flag]
        assert len(dataset) == windows_of(cls, expected_rows[flag] - L - O_ds + 1, C_GEN)
        np.testing.assert_allclose(dataset.data_x, scaled[start:start + expected_rows[flag]], rtol=1e-6, atol=1e-6)


# ---- bad inputs ------------------------------------------------------------------------------------

def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.csv'):
        build(MultivariateDatasetBenchmark, tmp_path, 'nothere.csv', 'train', 16, 8, 8)


def test_nan_and_inf_name_file_column_and_row(tmp_path):
    values = random_matrix()
    values[57, 2] = np.nan
    write_wide_csv(tmp_path / 'holes.csv', values)
    with pytest.raises(ValueError, match=r"holes\.csv: column '2' .*row 57"):
        read_series(tmp_path / 'holes.csv')
    values[57, 2] = 0
    values[9, 4] = np.inf
    np.save(tmp_path / 'inf.npy', values)
    with pytest.raises(ValueError, match=r"inf\.npy: column '4' .*row 9"):
        read_series(tmp_path / 'inf.npy')


def test_non_numeric_column_names_file_and_column(tmp_path):
    frame = pd.DataFrame({'date': ['d0', 'd1', 'd2', 'd3'], 'load': [1.0, 2.0, 3.0, 4.0],
                          'OT': ['1.5', '2.5', 'broken', '3.5']})
    frame.to_csv(tmp_path / 'mixed.csv', index=False)
    with pytest.raises(ValueError, match=r"mixed\.csv: column 'OT' has a non-numeric value 'broken'"):
        read_series(tmp_path / 'mixed.csv')


@pytest.mark.parametrize('dates', [[1467331200 + 3600 * i for i in range(4)], ['d0', 'd1', 'd2', 'd3']],
                         ids=['integer timestamps', 'text'])
def test_the_date_column_is_recognised_by_its_name_whatever_it_holds(tmp_path, dates):
    pd.DataFrame({'Date': dates, 'load': [1.0, 2.0, 3.0, 4.0], 'OT': [5.0, 6.0, 7.0, 8.0]}).to_csv(
        tmp_path / 'dated.csv', index=False)
    np.testing.assert_array_equal(read_series(tmp_path / 'dated.csv'), [[1, 5], [2, 6], [3, 7], [4, 8]])


def test_a_first_column_not_named_as_dates_is_a_variable(tmp_path):
    pd.DataFrame({'load': ['1.0', '2.0', 'oops', '4.0'], 'OT': [5.0, 6.0, 7.0, 8.0]}).to_csv(
        tmp_path / 'undated.csv', index=False)
    with pytest.raises(ValueError, match=r"undated\.csv: column 'load' has a non-numeric value 'oops' at data row 2 "
                                         r"\(a date column is recognised by its name"):
        read_series(tmp_path / 'undated.csv')


def test_unknown_extension(tmp_path):
    (tmp_path / 'table.xlsx').write_bytes(b'not a table')
    with pytest.raises(ValueError, match=r"table\.xlsx: unsupported extension '\.xlsx'"):
        read_series(tmp_path / 'table.xlsx')


def test_window_longer_than_split(tmp_path):
    name, _ = write_generated(tmp_path, 'csv', random_matrix())
    build(MultivariateDatasetBenchmark, tmp_path, name, 'train', 64, 32, 32)
    with pytest.raises(ValueError, match=r"electricity\.csv: split 'val'.*L=64.*O_ds=32"):
        build(MultivariateDatasetBenchmark, tmp_path, name, 'val', 64, 32, 32)
    with pytest.raises(ValueError, match=r"electricity\.csv: split 'train'.*L=128.*O_ds=32"):
        build(MultivariateDatasetBenchmark, tmp_path, name, 'train', 128, 32, 32)


# ---- 6. subset_rand_ratio --------------------------------------------------------------------------

@pytest.mark.parametrize('cls', BENCHMARK_CLASSES)
def test_subset_rand_ratio(tmp_path, cls):
    name, _ = write_generated(tmp_path, 'npy', random_matrix())
    full = build(cls, tmp_path, name, 'train', 16, 8, 8)
    first = build(cls, tmp_path, name, 'train', 16, 8, 8, subset_rand_ratio=0.3, seed=7)
    again = build(cls, tmp_path, name, 'train', 16, 8, 8, subset_rand_ratio=0.3, seed=7)
    other = build(cls, tmp_path, name, 'train', 16, 8, 8, subset_rand_ratio=0.3, seed=8)
    assert len(first) == int(len(full) * 0.3)
    np.testing.assert_array_equal(first.subset, again.subset)
    assert not np.array_equal(first.subset, other.subset)
    assert len(set(first.subset.tolist())) == len(first) and np.all(np.diff(first.subset) > 0)
    assert first.subset.max() < len(full)
    for i in (0, len(first) - 1):
        for got, want in zip(first[i], full[int(first.subset[i])]):
            np.testing.assert_array_equal(got, want)
    tiny = build(cls, tmp_path, name, 'train', 16, 8, 8, subset_rand_ratio=1e-6)
    assert len(tiny) == 1
    val = build(cls, tmp_path, name, 'val', 16, 8, 8, subset_rand_ratio=0.3)
    assert len(val) == windows_of(cls, 20 + 16 - 23, C_GEN)


@pytest.mark.parametrize('ratio', [0, -0.5, 1.5])
def test_subset_rand_ratio_out_of_range(tmp_path, ratio):
    name, _ = write_generated(tmp_path, 'npy', random_matrix())
    with pytest.raises(ValueError, match='--subset_rand_ratio'):
        build(MultivariateDatasetBenchmark, tmp_path, name, 'train', 16, 8, 8, subset_rand_ratio=ratio)


# ---- 7. folder dataset (Utsd) ----------------------------------------------------------------------

def write_utsd_folder(root):
    """Files in sorted relative-path order: a.csv (2 vars), short.csv (skipped), sub/b.npy (1-D), sub/c.npy (3 vars)."""
    (root / 'sub').mkdir()
    write_wide_csv(root / 'a.csv', random_matrix(T=300, C=2, seed=1))
    write_wide_csv(root / 'short.csv', random_matrix(T=20, C=2, seed=2))
    np.save(root / 'sub' / 'b.npy', random_matrix(T=200, C=1, seed=3)[:, 0])
    np.save(root / 'sub' / 'c.npy', random_matrix(T=250, C=3, seed=4))
    (root / 'notes.txt').write_text('ignored\n')


def manual_utsd_windows(root, flag, L, P, O_ds):
    """Every (seq_x, seq_y) of the folder, computed independently of the dataset class."""
    windows = []
    for relpath in ['a.csv', 'sub/b.npy', 'sub/c.npy']:
        raw = read_series(root / relpath)
        T = len(raw)
        n_train, n_test = int(0.9 * T), int(0.05 * T)
        start, end = {'train': (0, n_train), 'val': (n_train - L, T - n_test), 'test': (T - n_test - L, T)}[flag]
        train = raw[:n_train]
        part = ((raw - train.mean(axis=0)) / train.std(axis=0))[start:end]
        n_tp = len(part) - L - O_ds + 1
        for c in range(raw.shape[1]):
            column = part[:, c:c + 1]
            windows += [(column[s:s + L], expected_label(column, s, L, P, O_ds)) for s in range(n_tp)]
    return windows


@pytest.mark.parametrize('flag, O_ds', [('train', 8), ('val', 8), ('test', 12)])
def test_utsd_folder_split_scaler_and_index_mapping(tmp_path, capsys, flag, O_ds):
    write_utsd_folder(tmp_path)
    L, P = 16, 8
    dataset = UtsdDataset(str(tmp_path), 'ignored.csv', flag, size=[L, P, O_ds])
    printed = capsys.readouterr().out
    assert 'skipped 1 file' in printed and 'short.csv' in printed and printed.count('skipped') == 1
    assert f'{flag} {len(dataset)}' in printed
    windows = manual_utsd_windows(tmp_path, flag, L, P, O_ds)
    assert len(dataset) == len(windows)
    for index, (want_x, want_y) in enumerate(windows):
        seq_x, seq_y, _, _ = dataset[index]
        np.testing.assert_allclose(seq_x, want_x, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(seq_y, want_y, rtol=1e-6, atol=1e-6)
    if flag == 'train':
        assert dataset.file_starts == [0, 2 * 247, 2 * 247 + 157, 2 * 247 + 157 + 3 * 202]
        for series in dataset.series:  # per-file scaler: each file's train part is standardised
            np.testing.assert_allclose(series.mean(axis=0), 0, atol=1e-5)
            np.testing.assert_allclose(series.astype(np.float64).std(axis=0), 1, atol=1e-5)


def test_utsd_keys_and_subset(tmp_path):
    write_utsd_folder(tmp_path)
    assert DATA_DICT['Utsd'] is DATA_DICT['Utsd_Npy'] is UtsdDataset
    full = UtsdDataset(str(tmp_path), None, 'train', size=[16, 8, 8])
    subset = UtsdDataset(str(tmp_path), None, 'train', size=[16, 8, 8], subset_rand_ratio=0.1, seed=3)
    assert len(subset) == int(len(full) * 0.1) and len(np.unique(subset.subset)) == len(subset)
    np.testing.assert_array_equal(subset[5][0], full[int(subset.subset[5])][0])


# ---- factory and loaders ---------------------------------------------------------------------------

def loader_args(root, data_path, **overrides):
    args = dict(data='MultivariateDatasetBenchmark', root_path=str(root), data_path=data_path, seq_len=16,
                input_token_len=8, output_token_len=8, test_seq_len=24, test_pred_len=16, nonautoregressive=False,
                subset_rand_ratio=1.0, seed=2021, batch_size=4, num_workers=0)
    args.update(overrides)
    return SimpleNamespace(**args)


def test_factory_sizes_and_unknown_key(tmp_path):
    name, _ = write_generated(tmp_path, 'csv', random_matrix())
    args = loader_args(tmp_path, name)
    test_set, test_loader = data_provider(args, 'test')
    assert test_set.seq_len == 24 and test_set.output_token_len == 16 and len(test_set) == (40 + 24) - 24 - 16 + 1
    seq_x, seq_y, seq_x_mark, _ = next(iter(test_loader))
    assert seq_x.shape == (4, 24, C_GEN) and seq_y.shape == (4, 3 * 16, C_GEN) and seq_x_mark.shape == (4, 24, 1)
    assert get_dataset(args, 'val').seq_len == 16
    with pytest.raises(ValueError, match=r"--data 'Nope'.*MultivariateDatasetBenchmark.*Utsd_Npy"):
        get_dataset(loader_args(tmp_path, name, data='Nope'), 'train')


def epoch_order(args, flag):
    """The indices one epoch of the `flag` loader reads, in order, from a 50-item dataset."""
    class Indices(Dataset):
        def __len__(self):
            return 50

        def __getitem__(self, index):
            return index

    return torch.cat(list(get_loader(args, Indices(), flag))).tolist()


def test_loaders_shuffle_seed_and_ddp_shards(tmp_path):
    name, _ = write_generated(tmp_path, 'npy', random_matrix())
    args = loader_args(tmp_path, name)
    order = epoch_order(args, 'train')
    assert sorted(order) == list(range(50)) and order != sorted(order)  # every window once, shuffled
    assert epoch_order(args, 'train') == order  # seeded: the same on every run
    assert epoch_order(loader_args(tmp_path, name, seed=args.seed + 1), 'train') != order
    assert epoch_order(args, 'val') == list(range(50))
    train = get_dataset(args, 'train')
    loader = get_loader(args, train, 'train')
    assert len(loader) == -(-len(train) // 4) and not loader.persistent_workers and not loader.drop_last
    val = get_dataset(args, 'val')
    ordered = next(iter(get_loader(args, val, 'val')))[0]
    np.testing.assert_array_equal(ordered[1], val[1][0])
    assert isinstance(get_loader(args, train, 'train', rank=1, world_size=2).sampler, DistributedSampler)
    shard = get_loader(args, val, 'val', rank=1, world_size=2).dataset
    assert isinstance(shard, Subset) and list(shard.indices) == list(range(1, len(val), 2))
    assert get_loader(args, val, 'test_full', rank=0, world_size=2).dataset is val

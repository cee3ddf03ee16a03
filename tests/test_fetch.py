"""Fetcher tests: local mirrors only; urllib is replaced so nothing is ever downloaded."""
import hashlib
import io
import os

import pytest

from conftest import DATASETS
from data_provider import fetch
from data_provider.fetch import BenchmarkFile, FetchError, fetch_file, lookup, main

CONTENT = b'date,OT\n2020-01-01,1.0\n'


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('tests must not download')
    monkeypatch.setattr(fetch.urllib.request, 'urlopen', refuse)


@pytest.fixture
def toy_mirror(tmp_path):
    mirror = tmp_path / 'mirror'
    (mirror / 'toy').mkdir(parents=True)
    (mirror / 'toy' / 'toy.csv').write_bytes(CONTENT)
    return mirror


def toy_entry(sha256=hashlib.sha256(CONTENT).hexdigest(), url=None):
    return BenchmarkFile('toy/toy.csv', sha256, url, source='a test')


def test_copy_from_mirror_is_verified_and_idempotent(tmp_path, toy_mirror, capsys, monkeypatch):
    dest = tmp_path / 'dataset'
    target = fetch_file(toy_entry(), dest, toy_mirror)
    assert target == dest / 'toy' / 'toy.csv' and target.read_bytes() == CONTENT
    assert os.listdir(target.parent) == ['toy.csv']  # no temp file left behind
    monkeypatch.setitem(fetch.FILES, 'toy', toy_entry())
    assert main(['TOY', '--dest', str(dest), '--mirror', str(toy_mirror)]) == 0
    assert 'present, sha256 ok' in capsys.readouterr().out
    assert target.read_bytes() == CONTENT


def test_wrong_bytes_are_refused_and_leave_nothing(tmp_path, toy_mirror):
    dest = tmp_path / 'dataset'
    expected = hashlib.sha256(b'other bytes').hexdigest()
    with pytest.raises(FetchError) as error:
        fetch_file(toy_entry(sha256=expected), dest, toy_mirror)
    message = str(error.value)
    assert 'toy.csv' in message and expected in message and hashlib.sha256(CONTENT).hexdigest() in message
    assert '\n' not in message
    assert not (dest / 'toy' / 'toy.csv').exists() and os.listdir(dest / 'toy') == []


def test_download_is_verified_too(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.urllib.request, 'urlopen', lambda url, timeout: io.BytesIO(CONTENT))
    empty_mirror = tmp_path / 'empty'
    target = fetch_file(toy_entry(url='https://example.invalid/toy.csv'), tmp_path / 'd1', empty_mirror)
    assert target.read_bytes() == CONTENT
    with pytest.raises(FetchError, match='sha256 mismatch'):
        fetch_file(toy_entry(sha256='0' * 64, url='https://example.invalid/toy.csv'), tmp_path / 'd2', empty_mirror)
    assert not (tmp_path / 'd2' / 'toy' / 'toy.csv').exists()


def test_no_mirror_and_no_url_says_where_to_get_it(tmp_path):
    with pytest.raises(FetchError, match=r'toy/toy\.csv is not in the mirror .* get it from a test'):
        fetch_file(toy_entry(), tmp_path / 'dataset', tmp_path / 'empty')


def test_offline_unavailable_dataset_gives_instructions(tmp_path, capsys):
    assert main(['ECL', '--dest', str(tmp_path)]) == 1
    message = capsys.readouterr().err
    assert 'electricity/electricity.csv is not available offline' in message
    assert str(tmp_path / 'electricity' / 'electricity.csv') in message
    assert 'git hash-object' in message and '45c680ea6a68c7f37257702d2647f5040eebddf7' in message
    assert not (tmp_path / 'electricity').exists()


def test_names_are_case_insensitive_and_unknown_names_fail():
    assert lookup('ETTh1') is lookup('etth1') is fetch.FILES['etth1']
    assert lookup('ECL').relpath == 'electricity/electricity.csv'
    assert lookup('Solar').relpath == 'Solar/solar_AL.txt'
    assert [lookup(f'PEMS0{n}').relpath for n in (3, 4, 7, 8)] == [f'PEMS/PEMS0{n}.npz' for n in (3, 4, 7, 8)]
    with pytest.raises(FetchError, match="unknown dataset 'nope'"):
        lookup('nope')


@pytest.mark.data
def test_table_hashes_match_the_shared_mirror(tmp_path):
    offline = [entry for entry in fetch.FILES.values() if entry.sha256]
    assert len(offline) == 7
    for entry in offline:
        assert fetch.sha256_of(DATASETS / entry.relpath) == entry.sha256, entry.relpath
    assert main(['national_illness', '--dest', str(tmp_path), '--mirror', str(DATASETS)]) == 0
    assert (tmp_path / 'illness' / 'national_illness.csv').is_file()

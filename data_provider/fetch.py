"""Fetch the benchmark files into dataset/: copy from a local mirror or download, always checking SHA-256.

    python -m data_provider.fetch ETTh1 weather [--dest dataset] [--mirror DIR]

The mirror is --mirror, else $DATASET_MIRROR, else <repo>/../shared/datasets. See dataset/README.md.
"""
import argparse
import hashlib
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from utils.atomic import atomic_write
from utils.failures import RunFailure

REPO_ROOT = Path(__file__).resolve().parents[1]
ETT_URL = 'https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/{}'
AUTOFORMER_SOURCE = ('the Autoformer / Time-Series-Library dataset archive (all_six_datasets), '
                     'or the zips in github.com/aspire-zero/long_term_forecast_data')
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class BenchmarkFile:
    relpath: str                # under dataset/ and under the mirror
    sha256: str | None = None   # None: not available offline, the user places the file
    url: str | None = None      # None: no stable public URL
    source: str = ''            # where to get it by hand
    git_blob: str | None = None     # `git hash-object` id of a known copy (files without sha256)
    git_blob_of: str | None = None  # that copy, when it is an archive rather than the file itself


CME_MAMBA = 'github.com/Kyushu-U-AI/CME-Mamba'
FILES = {
    'etth1': BenchmarkFile('ETT-small/ETTh1.csv', 'f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066',
                           ETT_URL.format('ETTh1.csv'), 'github.com/zhouhaoyi/ETDataset'),
    'etth2': BenchmarkFile('ETT-small/ETTh2.csv', 'a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b',
                           ETT_URL.format('ETTh2.csv'), 'github.com/zhouhaoyi/ETDataset'),
    'ettm1': BenchmarkFile('ETT-small/ETTm1.csv', '6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e',
                           ETT_URL.format('ETTm1.csv'), 'github.com/zhouhaoyi/ETDataset'),
    'ettm2': BenchmarkFile('ETT-small/ETTm2.csv', 'db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd',
                           ETT_URL.format('ETTm2.csv'), 'github.com/zhouhaoyi/ETDataset'),
    'weather': BenchmarkFile('weather/weather.csv', '34ee981d07313e51da2a50bb600072c8ae4a69cb4b0651f4cb93a069d7a2ba63',
                             source=AUTOFORMER_SOURCE + ' (weather.zip)'),
    'exchange_rate': BenchmarkFile('exchange_rate/exchange_rate.csv',
                                   '48b4d9d3d508f5104162e85b9a6042e3557fde11aa9f2944eba8c0d0efc89842',
                                   source=AUTOFORMER_SOURCE + ' (exchange_rate.zip)'),
    'illness': BenchmarkFile('illness/national_illness.csv',
                             '93601f64d2566dc796ca4305adad8b8560c2db1a1ff04543c3bd813a7263570a',
                             source=AUTOFORMER_SOURCE + ' (illness.zip)'),
    'electricity': BenchmarkFile('electricity/electricity.csv', source=AUTOFORMER_SOURCE + ' (electricity.zip)',
                                 git_blob='45c680ea6a68c7f37257702d2647f5040eebddf7'),
    'traffic': BenchmarkFile('traffic/traffic.csv', source=AUTOFORMER_SOURCE + ' (traffic.zip)',
                             git_blob='0e64fbc82e17751468e21d9a9443ce06655131cc',
                             git_blob_of=f'dataset/traffic.zip of {CME_MAMBA}'),
    'solar': BenchmarkFile('Solar/solar_AL.txt', source=f'dataset/Solar.zip of {CME_MAMBA}',
                           git_blob='42df753ee6abd127a5dfd229950261fc3df7fbb1',
                           git_blob_of=f'dataset/Solar.zip of {CME_MAMBA}'),
    **{f'pems0{n}': BenchmarkFile(f'PEMS/PEMS0{n}.npz', source=f'dataset/PEMS/ of {CME_MAMBA}', git_blob=blob)
       for n, blob in [(3, 'b4487154fc9611a3bf9856b0aad34efa610ea8ae'), (4, 'a1a39eac4b86963b1ac22874fd1cc693eb642cd2'),
                       (7, '28c547f80eb8804d3e378168c80f77f82db2680a'), (8, 'f5f3e84a00417573aa8487fe1e9e8cd13c6026c8')]},
}
ALIASES = {'ecl': 'electricity', 'exchange': 'exchange_rate', 'national_illness': 'illness', 'ili': 'illness',
           'solar_al': 'solar'}


class FetchError(Exception):
    pass


def lookup(name):
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FILES:
        raise FetchError(f"unknown dataset {name!r}; known: {', '.join(FILES)} (aliases: {', '.join(ALIASES)})")
    return FILES[key]


def default_mirror():
    return Path(os.environ.get('DATASET_MIRROR') or REPO_ROOT.parent / 'shared' / 'datasets')


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def fetch_file(entry, dest_root, mirror):
    """Put `entry` at dest_root/entry.relpath, verified; return that path. Raises FetchError."""
    target = Path(dest_root) / entry.relpath
    if entry.sha256 is None and target.is_file():
        print(f"{target}: present (no sha256 on record; `git hash-object` of a known copy: {entry.git_blob})")
        return target
    if entry.sha256 is None:
        checked_file = entry.git_blob_of or target
        raise FetchError(f"{entry.relpath} is not available offline: get it from {entry.source} and place it at "
                         f"{target}; `git hash-object` of {checked_file} should print {entry.git_blob}")
    if target.is_file() and sha256_of(target) == entry.sha256:
        print(f"{target}: present, sha256 ok")
        return target
    source = Path(mirror) / entry.relpath
    if source.is_file():
        print(f"{target}: copying from {source}")
        open_source = partial(open, source, 'rb')
    elif entry.url:
        print(f"{target}: downloading {entry.url}")
        open_source = partial(urllib.request.urlopen, entry.url, timeout=DOWNLOAD_TIMEOUT_S)
    else:
        raise FetchError(f"{entry.relpath} is not in the mirror {mirror} and has no stable download URL: "
                         f"get it from {entry.source} and place it at {target} (sha256 {entry.sha256})")
    install_verified(open_source, target, entry.sha256)
    return target


def install_verified(open_source, target, expected_sha256):
    """Stream the source into a temporary file next to `target`, check its hash, then move it into place
    atomically."""
    def write(temp_name):
        with open(temp_name, 'wb') as out, open_source() as src:
            shutil.copyfileobj(src, out)
        actual = sha256_of(temp_name)
        if actual != expected_sha256:
            raise FetchError(f"{target.name}: sha256 mismatch, expected {expected_sha256}, got {actual}; "
                             f"{target} was not written")
    atomic_write(target, write)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Fetch benchmark data files (see dataset/README.md).')
    parser.add_argument('names', nargs='+', help=f"dataset names, case-insensitive: {', '.join(FILES)}")
    parser.add_argument('--dest', default=str(REPO_ROOT / 'dataset'), help='destination root (default: <repo>/dataset)')
    parser.add_argument('--mirror', default=None,
                        help='local copy of the files (default: $DATASET_MIRROR or <repo>/../shared/datasets)')
    args = parser.parse_args(argv)
    mirror = Path(args.mirror) if args.mirror else default_mirror()
    failed = 0
    for name in args.names:
        try:
            fetch_file(lookup(name), args.dest, mirror)
        except (FetchError, RunFailure, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

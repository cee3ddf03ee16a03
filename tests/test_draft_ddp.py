"""Draft pretraining: DDP on CPU (gloo, torchrun with 2 processes) against one process on the same global batch,
and --task_name pretrain on a folder of files (--data Utsd). training.md sections 3, 5, 8 and 10.7.

The DDP test trains on a train subset that is exactly one global batch (4 windows: --batch_size 4 in one process,
2 per rank under DDP) with dropout 0. Both runs then take the mean gradient over the same 4 windows at every step,
whatever order the seeded generator or the DistributedSampler draws them in, so their weights must agree to float
rounding. A small wrapper around run.py (PROBE) records every validation value and every checkpoint save per rank.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import run
from conftest import REPO_ROOT, tiny_model, write_csv
from utils.checkpoint import load_checkpoint
from utils.distributed import free_port

# Target sizes 64/4/64/1 give a 16/1/16/1 draft at the default 0.25 scales.
DRAFT_FLAGS = ['--model', 'timer_xl_draft', '--d_model', '64', '--n_heads', '4', '--d_ff', '64', '--e_layers', '1']

PROBE = '''
import json, os, sys
import exp.exp_forecast as ef
RANK = os.environ.get("RANK", "0")
vali, save = ef.ExpForecast.vali, ef.save_checkpoint

def record(**event):
    with open(f"probe_rank{RANK}.jsonl", "a") as f:
        f.write(json.dumps(event) + "\\n")

def probed_vali(self, loader, is_test=False, aligned_test=False):
    value = vali(self, loader, is_test, aligned_test)
    record(event="vali", aligned_test=aligned_test, value=value)
    return value

def probed_save(model, path):
    record(event="save", path=path, keys=list(model.state_dict()))
    return save(model, path)

ef.ExpForecast.vali, ef.save_checkpoint = probed_vali, probed_save
import run
run.main(sys.argv[1:])
'''


def read_probe(folder, rank):
    path = Path(folder) / f'probe_rank{rank}.jsonl'
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def only_checkpoint(folder):
    runs = list((Path(folder) / 'checkpoints').iterdir())
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason='torch.distributed is not available')
def test_ddp_matches_one_process_on_the_same_global_batch(tmp_path):
    write_csv(tmp_path / 'toy.csv', rows=1100)  # 483 train, 15 val and 125 test windows of 192 + 96
    (tmp_path / 'probe.py').write_text(PROBE)
    flags = ['--task_name', 'pretrain', '--is_training', '1', '--model_id', 'draft_pretrain_ddp',
             '--data', 'MultivariateDatasetBenchmark', '--root_path', str(tmp_path), '--data_path', 'toy.csv',
             '--seq_len', '192', '--test_seq_len', '192', '--input_token_len', '96', '--output_token_len', '96',
             '--test_pred_len', '96', *DRAFT_FLAGS, '--dropout', '0', '--subset_rand_ratio', '0.01',  # 4 windows
             '--train_epochs', '2', '--num_workers', '0', '--use_norm', '--valid_last', '--seed', '7',
             '--learning_rate', '0.001', '--cosine', '--tmax', '4']
    inherited = ('TORCHELASTIC', 'RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_PORT')
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1', MASTER_ADDR='127.0.0.1')
    runs = {'ddp': [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
                    str(free_port()), str(tmp_path / 'probe.py'), '--ddp', *flags, '--batch_size', '2'],
            'single': [sys.executable, str(tmp_path / 'probe.py'), *flags, '--batch_size', '4']}
    procs = {}
    for name, cmd in runs.items():  # both at once: the wall time is mostly interpreter start-up
        (tmp_path / name).mkdir()
        procs[name] = subprocess.Popen(cmd, cwd=tmp_path / name, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
    out = {name: proc.communicate(timeout=300)[0] for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f'{name} run failed:\n{out[name][-4000:]}'
    ddp, single = tmp_path / 'ddp', tmp_path / 'single'

    # Validation and diagnostic test losses: identical on both ranks, equal to one process up to rounding.
    rank0, rank1, one = read_probe(ddp, 0), read_probe(ddp, 1), read_probe(single, 0)
    values = lambda events: [(e['aligned_test'], e['value']) for e in events if e['event'] == 'vali']
    assert len(values(rank0)) == 4 and values(rank0) == values(rank1)
    for (kind_d, v_d), (kind_s, v_s) in zip(values(rank0), values(one), strict=True):
        assert kind_d == kind_s and v_d == pytest.approx(v_s, rel=1e-6)
    printed = lambda text: [float(v) for v in re.findall(r'Vali Loss: (\S+)', text)]
    assert len(printed(out['ddp'])) == len(printed(out['single'])) == 2
    assert printed(out['ddp']) == pytest.approx(printed(out['single']), abs=2e-7)

    # Only rank 0 saves (once per improvement), unwrapped: no `module.` prefix, in the file or in the saved model.
    saves = [e for e in rank0 if e['event'] == 'save']
    assert not [e for e in rank1 if e['event'] == 'save']
    assert len(saves) == len([e for e in one if e['event'] == 'save']) >= 1
    assert all(not k.startswith('module.') for e in saves for k in e['keys'])
    folder = only_checkpoint(ddp)
    assert folder.name.startswith('draft_pretrain_ddp_timer_xl_draft_') and '_bt2_' in folder.name
    assert sorted(p.name for p in folder.iterdir()) == ['checkpoint.pth', 'manifest.json']  # no temporaries
    state = torch.load(folder / 'checkpoint.pth', map_location='cpu', weights_only=True)
    assert state and not [k for k in state if k.startswith('module.')]

    # One result record, from rank 0; one test_results folder.
    record = (ddp / 'result_long_term_forecast.txt').read_text()
    assert record.count('mse:') == 1 and record.startswith(folder.name + '  \n')
    assert len(list((ddp / 'test_results').iterdir())) == 1

    # The DDP checkpoint loads strictly in a single process and equals the one-process weights.
    model = tiny_model('timer_xl_draft', d_model=64, n_heads=4, d_ff=64, e_layers=1, input_token_len=96,
                       output_token_len=96)
    load_checkpoint(model, str(folder / 'checkpoint.pth'))
    reference = torch.load(only_checkpoint(single) / 'checkpoint.pth', map_location='cpu', weights_only=True)
    assert state.keys() == reference.keys()
    for key in state:
        torch.testing.assert_close(state[key], reference[key], rtol=1e-4, atol=1e-5, msg=key)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


# ---- pretraining on a folder of files -----------------------------------------------------------------

def write_corpus(root):
    """Nested .csv/.npy files, one too short for a window, one file type that is not read."""
    rng = np.random.default_rng(1)
    (root / 'a' / 'b').mkdir(parents=True)
    t = np.arange(400)
    pd.DataFrame({'date': pd.date_range('2021-01-01', periods=400, freq='h').astype(str),
                  'x': np.sin(t / 9) + 0.1 * rng.standard_normal(400),
                  'y': np.cos(t / 5)}).to_csv(root / 'one.csv', index=False)                  # 2 variables
    np.save(root / 'a' / 'b' / 'two.npy', np.sin(np.arange(500) / 7)[:, None] * [1.0, 2.0, 3.0])  # 3 variables
    pd.DataFrame({'v': rng.standard_normal(300)}).to_csv(root / 'a' / 'three.csv', index=False)  # 1 variable
    np.save(root / 'a' / 'short.npy', np.arange(60.0))                                            # too short
    (root / 'a' / 'notes.txt').write_text('not a series\n')
    # (rows, variables) of the files that hold a window
    return [(400, 2), (500, 3), (300, 1)]


def test_pretrain_on_a_folder_of_files_writes_a_draft_pretrain_checkpoint(workdir, capsys):
    corpus = workdir / 'corpus'
    files = write_corpus(corpus)
    L, P = 48, 24
    run.main(['--task_name', 'pretrain', '--is_training', '1', '--model_id', 'draft_pretrain_corpus_025x',
              '--data', 'Utsd', '--root_path', str(corpus), *DRAFT_FLAGS,
              '--seq_len', str(L), '--test_seq_len', str(L), '--input_token_len', str(P),
              '--output_token_len', str(P), '--test_pred_len', str(P), '--batch_size', '256', '--train_epochs', '1',
              '--num_workers', '0', '--use_norm', '--valid_last', '--cosine', '--learning_rate', '0.001'])
    out = capsys.readouterr().out
    # Every file is used: channel-independent windows, C * (int(0.9 T) - L - O + 1) per file.
    expected = sum(c * (int(0.9 * rows) - L - P + 1) for rows, c in files)
    assert re.search(rf'^train {expected}$', out, re.M)
    assert re.search(r'^Utsd: skipped 1 file\(s\) with fewer than .*a/short\.npy$', out, re.M)
    runs = list((workdir / 'checkpoints').iterdir())
    assert len(runs) == 1 and runs[0].name.startswith('draft_pretrain_corpus_025x_timer_xl_draft_Utsd_corpus_sl48_')
    assert (runs[0] / 'checkpoint.pth').is_file()
    assert (workdir / 'result_long_term_forecast.txt').read_text().startswith(runs[0].name + '  \n')

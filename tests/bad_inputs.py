"""Bad inputs a new user might give run.py, one per row, grouped by class of mistake: the one table of them.

tests/test_validation.py runs every case and asserts a clear error. Run this file to print the table of the
outcomes (clear error / unclear error / traceback / silent run):

    .venv/bin/python tests/bad_inputs.py
"""
import contextlib
import copy
import io
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from cli.parser import parse_flags
from cli.paths import make_setting
from conftest import cli_args, tiny_model, write_csv
from utils.checkpoint import save_checkpoint, write_manifest

# Tiny model and windows on the 400-row toy.csv (general 70/10/20 split: the test split holds 80 + L rows).
TOY = dict(task_name='forecast', is_training=1, model_id='t', model='timer_xl', data='MultivariateDatasetBenchmark',
           d_model=16, n_heads=2, d_ff=32, e_layers=1, seq_len=48, input_token_len=24, output_token_len=24,
           test_seq_len=48, test_pred_len=24, batch_size=32, num_workers=0, train_epochs=1, data_path='toy.csv')


@dataclass(frozen=True)
class Case:
    kind: str     # data, lengths, checkpoints, combinations, folders
    name: str
    flags: dict   # on top of TOY; True -> switch, None -> flag left out
    named: tuple  # what the one-line message must contain
    setup: object = None  # (workdir, argv) -> None: writes the files the case needs
    extra: list = field(default_factory=list)  # raw command-line words appended as they are

    def argv(self, workdir):
        return toy_argv(workdir, **self.flags) + self.extra


def toy_argv(workdir, **flags):
    """run.py command line of TOY with `flags` on top, reading and writing in `workdir`."""
    return cli_args({**TOY, 'root_path': str(workdir), 'checkpoints': str(workdir / 'checkpoints'), **flags})


# (name='timer_xl', seed=0, **flags): a freshly initialised model of TOY's sizes
tiny = partial(tiny_model, **{k: v for k, v in TOY.items() if k != 'data_path'})


def save(workdir, relpath, model):
    save_checkpoint(model, str(workdir / relpath))


def write_text(relpath, text):
    return lambda workdir, argv: (workdir / relpath).write_text(text)


def write_rows(relpath, rows=400, cells=None):
    return lambda workdir, argv: write_csv(workdir / relpath, rows=rows, cells=cells)


def write_undated(relpath, cells):
    """toy.csv's numbers without its date column, with `cells` overwritten."""
    def setup(workdir, argv):
        write_csv(workdir / relpath, cells=cells)
        pd.read_csv(workdir / relpath).drop(columns='date').to_csv(workdir / relpath, index=False)
    return setup


def write_columns(relpath, columns):
    header = ','.join(columns)
    body = ''.join(f"2020-01-01 {i:02d}:00:00,{','.join(['1.5'] * (len(columns) - 1))}\n" for i in range(24))
    return write_text(relpath, header + '\n' + body * 17)


def save_model(relpath, model='timer_xl', **flags):
    return lambda workdir, argv: save(workdir, relpath, tiny(model, **flags))


def save_diverged(relpath):
    def setup(workdir, argv):
        model = tiny()
        with torch.no_grad():
            model.head.weight[0, 0] = float('nan')
        save(workdir, relpath, model)
    return setup


def trained_with(**flags):
    """The manifest of the --test_dir target: the flags of this command line with `flags` changed."""
    def setup(workdir, argv):
        args = parse_flags(argv)
        vars(args).update(flags)
        write_manifest(str(workdir / TARGET_FOLDER), args)
    return setup


def save_object(relpath, obj):
    def setup(workdir, argv):
        (workdir / relpath).parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, str(workdir / relpath))
    return setup


def save_truncated(relpath):
    def setup(workdir, argv):
        save(workdir, relpath, tiny())
        data = (workdir / relpath).read_bytes()
        (workdir / relpath).write_bytes(data[:len(data) // 2])
    return setup


def make_folder(relpath):
    return lambda workdir, argv: (workdir / relpath).mkdir()


def both(*setups):
    def setup(workdir, argv):
        for one in setups:
            one(workdir, argv)
    return setup


def trained_folder(manifest_change=None, manifest=True):
    """The checkpoint folder of this command line, as an earlier run with `manifest_change` would have left it
    (setup returns the folder)."""
    def setup(workdir, argv):
        args = parse_flags(argv)
        folder = workdir / 'checkpoints' / make_setting(args, 0)
        save(workdir, folder / 'checkpoint.pth', tiny())
        if manifest:
            earlier = copy.copy(args)
            vars(earlier).update(manifest_change or {})
            write_manifest(str(folder), earlier)
        return folder
    return setup


def damaged_manifest(workdir, argv):
    trained_folder()(workdir, argv)
    (workdir / 'checkpoints' / make_setting(parse_flags(argv), 0) / 'manifest.json').write_text('{"seed": 20')


TEST_ONLY = dict(is_training=0, test_dir='target')
TARGET_FOLDER = 'checkpoints/target'  # --test_dir target
TARGET = f'{TARGET_FOLDER}/checkpoint.pth'
SPEC = dict(TEST_ONLY, use_speculative=True, spec_draft_ckpt='draft.pth')
TTM_TRAINING = dict(model='ttm', nonautoregressive=True, output_token_len=96, data_path='long.csv', n_vars=5)
HUGE = dict(d_model=32768, n_heads=2, d_ff=2 ** 20, e_layers=64)  # about 4.4e12 parameters
DRAFT_SIZES = dict(d_model=64, n_heads=8, d_ff=64)  # its 0.25 draft is 16 wide with 2 heads

CASES = [
    # ---- data files
    Case('data', 'missing file', dict(data_path='nope.csv'), ('--data_path', 'nope.csv', 'toy.csv')),
    Case('data', 'missing folder', dict(root_path='/nonexistent/folder'), ('--root_path', '/nonexistent/folder')),
    Case('data', 'no header row', dict(data_path='noheader.csv'), ('noheader.csv', 'not a header'),
         write_text('noheader.csv', '2020-01-01 00:00:00,1.0,2.0,3.0\n' * 400)),
    Case('data', "no 'OT' column", dict(data_path='no_ot.csv'), ('no_ot.csv', "'OT'"),
         write_columns('no_ot.csv', ['date', 'a', 'b', 'c'])),
    Case('data', "--covariate, 'OT' not last", dict(data_path='ot_first.csv', covariate=True),
         ('--covariate', 'ot_first.csv', "'OT'"), write_columns('ot_first.csv', ['date', 'OT', 'a', 'b'])),
    Case('data', 'text in a cell', dict(data_path='text.csv'), ('text.csv', "'b'", 'row 10', "'oops'"),
         write_rows('text.csv', cells={(10, 'b'): 'oops'})),
    Case('data', 'empty cell (NaN)', dict(data_path='nan.csv'), ('nan.csv', "'b'", 'row 10', 'NaN'),
         write_rows('nan.csv', cells={(10, 'b'): None})),
    Case('data', 'infinite cell', dict(data_path='inf.csv'), ('inf.csv', "'a'", 'row 3', 'inf'),
         write_rows('inf.csv', cells={(3, 'a'): 'inf'})),
    Case('data', 'empty file', dict(data_path='empty.csv'), ('empty.csv', 'empty file'), write_text('empty.csv', '')),
    Case('data', 'header only', dict(data_path='header.csv'), ('header.csv', 'no data rows'),
         write_text('header.csv', 'date,a,b,OT\n')),
    Case('data', 'too few rows for a train window', dict(data_path='short.csv'),
         ('short.csv', 'too few rows', 'train', '--seq_len 48'), write_rows('short.csv', rows=90)),
    Case('data', 'ragged row', dict(data_path='ragged.csv'), ('ragged.csv', 'line 12'),
         write_text('ragged.csv', 'date,a,b,OT\n' + '2020,1,2,3\n' * 10 + '2020,1,2,3,4\n' + '2020,1,2,3\n' * 300)),
    Case('data', 'unsupported extension', dict(data_path='toy.xlsx'), ('toy.xlsx', 'extension', '.csv'),
         write_text('toy.xlsx', 'not a spreadsheet')),
    Case('data', 'no date column, a malformed first cell', dict(data_path='undated.csv'),
         ('undated.csv', "'a'", 'row 2', "'oops'"), write_undated('undated.csv', {(2, 'a'): 'oops'})),
    Case('data', 'a value beyond float32', dict(data_path='big.csv'), ('big.csv', "'b'", 'row 5', 'float32'),
         write_rows('big.csv', cells={(5, 'b'): '1e39'})),
    Case('data', 'an outlier squashing a column', dict(data_path='outlier.csv'),
         ('outlier.csv', "'a'", 'squashed', 'row 5'), write_rows('outlier.csv', cells={(5, 'a'): '1e30'})),
    Case('data', 'every column constant', dict(data_path='flat.csv'), ('flat.csv', 'constant'),
         write_columns('flat.csv', ['date', 'a', 'b', 'OT'])),
    Case('data', "TTM's --n_vars against the data", TTM_TRAINING, ('--n_vars 5', '3 variable'),
         write_rows('long.csv', rows=1000)),
    Case('data', "TTM's --n_vars with one-variable windows", dict(TTM_TRAINING, data='UnivariateDatasetBenchmark'),
         ('--n_vars 5', '1 variable'), write_rows('long.csv', rows=1000)),
    Case('data', 'folder of files without files', dict(data='Utsd', root_path='empty_folder'),
         ('--root_path', 'empty_folder', 'no .csv or .npy'), make_folder('empty_folder')),
    # ---- lengths
    Case('lengths', '--seq_len not a multiple of P', dict(seq_len=50), ('--seq_len 50', '--input_token_len 24')),
    Case('lengths', '--test_seq_len not a multiple of P', dict(test_seq_len=60), ('--test_seq_len 60',)),
    Case('lengths', '--test_pred_len 0', dict(test_pred_len=0), ('--test_pred_len 0', '>= 1')),
    Case('lengths', '--test_pred_len negative', dict(test_pred_len=-5), ('--test_pred_len -5', '>= 1')),
    Case('lengths', '--test_pred_len too long', dict(test_pred_len=200),
         ('--test_pred_len 200', 'longest that fits is 80')),
    Case('lengths', '--test_pred_len too long (test only)', dict(TEST_ONLY, test_pred_len=81),
         ('--test_pred_len 81', 'longest that fits is 80'), save_model(TARGET)),
    Case('lengths', '--seq_len longer than the train split', dict(seq_len=480, test_seq_len=48),
         ('--seq_len 480', 'train')),
    Case('lengths', '--batch_size 0', dict(batch_size=0), ('--batch_size 0', '>= 1')),
    Case('lengths', '--test_max_batches 0', dict(test_max_batches=0), ('--test_max_batches 0', '>= 1')),
    Case('lengths', '--input_token_len 0', dict(input_token_len=0), ('--input_token_len 0', '>= 1')),
    Case('lengths', '--tmax 0', dict(cosine=True, tmax=0), ('--tmax 0', '>= 1')),
    Case('lengths', '--seed -1', dict(seed=-1), ('--seed -1', '2**32')),
    Case('lengths', '--seed 2**32', dict(seed=2 ** 32), ('--seed 4294967296', '2**32')),
    Case('lengths', 'a model too large for memory', HUGE, ('--d_model 32768', 'parameters', 'GiB')),
    Case('lengths', 'a model too large for memory (test only)', dict(TEST_ONLY, **HUGE),
         ('--d_model 32768', 'parameters', 'GiB')),
    Case('lengths', '--d_model not divisible by --n_heads', dict(d_model=18, n_heads=4), ('--d_model 18',
                                                                                          '--n_heads 4')),
    Case('lengths', 'head dim not a multiple of 4', dict(d_model=20, n_heads=2), ('--d_model', 'multiple of 4')),
    # ---- checkpoints read
    Case('checkpoints', 'test-only, no checkpoint', dict(TEST_ONLY), ('--test_dir', 'checkpoint.pth', 'not found')),
    Case('checkpoints', 'truncated checkpoint', dict(TEST_ONLY), ('checkpoint.pth', 'not a readable checkpoint'),
         save_truncated(TARGET)),
    Case('checkpoints', 'text file as checkpoint', dict(SPEC, spec_draft_ckpt='notes.pth'),
         ('--spec_draft_ckpt', 'notes.pth', 'not a readable checkpoint'),
         both(save_model(TARGET), write_text('notes.pth', 'hi'))),
    Case('checkpoints', 'a list saved as checkpoint', dict(TEST_ONLY), ('checkpoint.pth', 'not hold a state dict'),
         save_object(TARGET, [1, 2])),
    Case('checkpoints', 'target of another width', dict(TEST_ONLY),
         ('--d_model 16', 'shape mismatches', 'embedding.weight', '(32, 24)', '(16, 24)'),
         save_model(TARGET, d_model=32)),
    Case('checkpoints', 'another model family (timer for timer_xl)', dict(TEST_ONLY),
         ('--test_dir', 'a timer model', 'a timer_xl model'), save_model(TARGET, 'timer')),
    Case('checkpoints', 'draft where a target is expected', dict(TEST_ONLY),
         ('--test_dir', 'holds a timer_xl_draft model', 'a timer_xl model'), save_model(TARGET, 'timer_xl_draft')),
    Case('checkpoints', 'target where a draft is expected', dict(SPEC),
         ('--spec_draft_ckpt', 'holds a timer_xl model', 'a timer_xl_draft model'),
         both(save_model(TARGET), save_model('draft.pth'))),
    Case('checkpoints', 'stochastic draft without --draft_stochastic', dict(SPEC),
         ('--spec_draft_ckpt', 'draft.pth', 'hint: checkpoint is stochastic: pass --draft_stochastic'),
         both(save_model(TARGET), save_model('draft.pth', 'timer_xl_draft', draft_stochastic=True))),
    Case('checkpoints', 'deterministic draft with --draft_stochastic', dict(SPEC, draft_stochastic=True),
         ('--spec_draft_ckpt', 'draft.pth', '--draft_stochastic True', 'drop --draft_stochastic'),
         both(save_model(TARGET), save_model('draft.pth', 'timer_xl_draft'))),
    Case('checkpoints', 'test-only, another --activation than training', dict(TEST_ONLY, activation='gelu'),
         ('--test_dir', "--activation 'relu' there, 'gelu' now", 'manifest.json'),
         both(save_model(TARGET), trained_with(activation='relu'))),
    Case('checkpoints', 'test-only, no --use_norm where training had it', dict(TEST_ONLY),
         ('--test_dir', '--use_norm True there, False now'), both(save_model(TARGET), trained_with(use_norm=True))),
    Case('checkpoints', 'speculative, a draft trained with --covariate', dict(SPEC, spec_draft_ckpt='drafts/draft.pth'),
         ('--spec_draft_ckpt', '--covariate True there, False now'),
         both(save_model(TARGET), save_model('drafts/draft.pth', 'timer_xl_draft'),
              lambda workdir, argv: write_manifest(str(workdir / 'drafts'), parse_flags(argv + ['--covariate'])))),
    Case('checkpoints', 'test-only, a damaged manifest next to the checkpoint', dict(TEST_ONLY),
         ('--test_dir', 'manifest.json', 'damaged'),
         both(save_model(TARGET), write_text(f'{TARGET_FOLDER}/manifest.json', '\x00\x01 not json'))),
    Case('checkpoints', 'NaN weights', dict(TEST_ONLY), ('checkpoint.pth', 'NaN or infinite', 'head.weight'),
         save_diverged(TARGET)),
    Case('checkpoints', 'draft missing', dict(SPEC), ('--spec_draft_ckpt draft.pth', 'not found'), save_model(TARGET)),
    Case('checkpoints', 'draft of another width', dict(SPEC),
         ('--spec_draft_ckpt draft.pth', '--d_model 16', 'shape mismatches (', 'embedding.weight: checkpoint (8, 24) vs '
          'model (4, 24)'), both(save_model(TARGET), save_model('draft.pth', 'timer_xl_draft', d_model=32))),
    Case('checkpoints', 'draft of another patch length', dict(SPEC),
         ('--input_token_len 24', 'embedding.weight: checkpoint (4, 12) vs model (4, 24)'),
         both(save_model(TARGET), save_model('draft.pth', 'timer_xl_draft', input_token_len=12, output_token_len=12))),
    Case('checkpoints', 'teacher checkpoint missing', dict(DRAFT_SIZES, model='timer_xl_draft', distill=True,
                                                           distill_target_ckpt='teacher.pth'),
         ('--distill_target_ckpt', 'teacher.pth', 'not found')),
    Case('checkpoints', 'teacher of other sizes', dict(DRAFT_SIZES, model='timer_xl_draft', distill=True,
                                                       distill_target_ckpt='teacher.pth'),
         ('--distill_target_ckpt', 'teacher.pth', '--distill_target_d_model 64', 'shape mismatches'),
         save_model('teacher.pth')),
    Case('checkpoints', '--adaptation without the file', dict(adaptation=True, pretrain_model_path='pre.pth'),
         ('--pretrain_model_path', 'pre.pth', 'not found')),
    # ---- flags that do nothing or cannot work together
    Case('combinations', '--rollout foo (training)', dict(rollout='foo'), ('--rollout', 'sliding, cached')),
    Case('combinations', '--target_sample while training', dict(target_sample=True),
         ('--target_sample', '--is_training 0')),
    Case('combinations', '--target_sample, speculative, no baseline', dict(SPEC, target_sample=True),
         ('--target_sample', '--spec_compare_baseline')),
    Case('combinations', '--spec_sigma nan', dict(spec_sigma='nan'), ('--spec_sigma nan', 'finite')),
    Case('combinations', '--spec_sigma inf', dict(spec_sigma='inf', use_speculative=True),
         ('--spec_sigma inf', 'finite')),
    Case('combinations', '--spec_accept_bias inf', dict(spec_accept_bias='inf'), ('--spec_accept_bias inf', 'finite')),
    Case('combinations', '--spec_accept_bias 0.5', dict(spec_accept_bias=0.5), ('--spec_accept_bias 0.5', '>= 1')),
    Case('combinations', '--spec_k 0', dict(spec_k=0), ('--spec_k 0', '>= 1')),
    Case('combinations', '--spec_k without --use_speculative', dict(spec_k=2), ('--spec_k', '--use_speculative')),
    Case('combinations', '--spec_mse_budget -1', dict(SPEC, spec_mse_budget=-1), ('--spec_mse_budget -1', '>= 0')),
    Case('combinations', '--spec_mse_budget nan', dict(SPEC, spec_mse_budget='nan'), ('--spec_mse_budget nan',)),
    Case('combinations', '--spec_mse_budget abc', dict(SPEC, spec_mse_budget='abc'), ('--spec_mse_budget', "'abc'")),
    Case('combinations', '--spec_mse_budget without speculation', dict(spec_mse_budget=1),
         ('--spec_mse_budget', '--use_speculative')),
    Case('combinations', '--spec_mse_budget with --spec_sigma', dict(SPEC, spec_mse_budget=1, spec_sigma=0.3),
         ('--spec_sigma 0.3', '--spec_mse_budget')),
    Case('combinations', '--spec_calib_windows without a budget', dict(SPEC, spec_calib_windows=8),
         ('--spec_calib_windows', '--spec_mse_budget')),
    Case('combinations', '--spec_calib_windows 0', dict(SPEC, spec_mse_budget=1, spec_calib_windows=0),
         ('--spec_calib_windows 0', '>= 1')),
    Case('combinations', '--distill_rollout_patches without --distill', dict(distill_rollout_patches=3),
         ('--distill_rollout_patches', '--distill')),
    Case('combinations', '--cache_stats without cached', dict(cache_stats='frozen'), ('--cache_stats', '--rollout cached')),
    Case('combinations', '--cache_stats unknown', dict(rollout='cached', cache_stats='rolling', **TEST_ONLY),
         ('--cache_stats', 'trailing, frozen')),
    Case('combinations', '--cache_max_tokens -1', dict(cache_max_tokens=-1), ('--cache_max_tokens -1', '>= 0')),
    Case('combinations', '--cache_max_tokens without cached', dict(cache_max_tokens=8),
         ('--cache_max_tokens', '--rollout cached')),
    Case('combinations', '--rollout cached --covariate', dict(rollout='cached', covariate=True),
         ('--rollout cached', '--covariate')),
    Case('combinations', '--rollout cached with P != O', dict(rollout='cached', output_token_len=48),
         ('--rollout cached', '--input_token_len == --output_token_len')),
    Case('combinations', '--tmax without --cosine', dict(tmax=5), ('--tmax', '--cosine')),
    Case('combinations', '--use_speculative without a draft', dict(use_speculative=True), ('--spec_draft_ckpt',)),
    Case('combinations', 'speculative with P != O', dict(use_speculative=True, spec_draft_ckpt='d.pth',
                                                         output_token_len=48),
         ('--input_token_len', '--output_token_len')),
    Case('combinations', '--distill without a teacher', dict(distill=True), ('--distill_target_ckpt',)),
    Case('combinations', '--draft_stochastic with a target', dict(draft_stochastic=True),
         ('--draft_stochastic', '--model timer_xl_draft')),
    Case('combinations', '--pretrain_model_path without --adaptation', dict(pretrain_model_path='p.pth'),
         ('--pretrain_model_path', '--adaptation')),
    Case('combinations', '--ddp and --dp', dict(ddp=True, dp=True), ('--ddp', '--dp')),
    Case('combinations', 'a TTM flag without a TTM', dict(hidden_dim=30), ('--hidden_dim 30', 'ttm')),
    Case('combinations', 'unknown --model', dict(model='timer_xxl'), ("--model 'timer_xxl'",
                                                                     'timer, timer_draft, timer_xl, timer_xl_draft, ttm')),
    Case('combinations', 'unknown --data', dict(data='ETTh1'), ("--data 'ETTh1'", 'MultivariateDatasetBenchmark')),
    Case('combinations', '--task_name finetune', dict(task_name='finetune'), ('--task_name', 'forecast, pretrain')),
    Case('combinations', '--subset_rand_ratio 0', dict(subset_rand_ratio=0), ('--subset_rand_ratio 0', '(0, 1]')),
    Case('combinations', '--dropout 1.5', dict(dropout=1.5), ('--dropout 1.5', '[0, 1)')),
    Case('combinations', '--learning_rate -1', dict(learning_rate=-1), ('--learning_rate -1', '> 0')),
    Case('combinations', '--is_training 2', dict(is_training=2), ('--is_training 2', '0, 1')),
    Case('combinations', 'unknown --lradj', dict(lradj='cosine'), ("--lradj 'cosine'", 'type1, type2, type3, constant')),
    Case('combinations', 'unknown --activation', dict(activation='tanh'), ("--activation 'tanh'", 'relu, gelu')),
    Case('combinations', 'unknown --rope_position', dict(rope_position='spiral'),
         ("--rope_position 'spiral'", 'time, flat')),
    Case('combinations', '--spec_sigma 0', dict(SPEC, spec_sigma=0), ('--spec_sigma 0', '> 0')),
    Case('combinations', 'unknown --spec_accept_mode', dict(SPEC, spec_accept_mode='foo'),
         ("--spec_accept_mode 'foo'", 'tolerance, lossless')),
    Case('combinations', '--rollout cached with flat RoPE positions', dict(rollout='cached', rope_position='flat'),
         ('--rollout cached', '--rope_position flat')),
    Case('combinations', 'TTM training without --nonautoregressive', dict(model='ttm', output_token_len=96),
         ('--model ttm', '--nonautoregressive')),
    Case('combinations', "TTM's --output_token_len not --ttm_patches * P", dict(TTM_TRAINING, ttm_patches=3),
         ('--output_token_len', '72', 'got 96')),
    Case('combinations', 'TTM tested with --rollout cached', dict(TEST_ONLY, model='ttm', rollout='cached'),
         ('--model ttm', 'keeps no KV cache', '--rollout sliding')),
    Case('combinations', 'TTM sizes it cannot have', dict(TTM_TRAINING, hidden_dim=30, AP_levels=2),
         ('ttm', '--hidden_dim 30')),
    Case('combinations', '--draft_stochastic with a Timer target', dict(model='timer', draft_stochastic=True),
         ('--draft_stochastic', 'timer_xl_draft/ttm')),
    Case('combinations', 'a TTM flag next to a Timer teacher', dict(model='timer', distill=True,
                                                                     distill_target_ckpt='t.pth', ttm_patches=2),
         ('--ttm_patches 2 does nothing',)),
    Case('combinations', '--draft_stochastic with a Timer draft', dict(SPEC, spec_draft_model='timer_draft',
                                                                         draft_stochastic=True),
         ('--draft_stochastic does nothing', 'timer_xl_draft/ttm')),
    Case('combinations', '--draft_scale_* with a TTM draft', dict(SPEC, spec_draft_model='ttm', draft_scale_d_model=0.5),
         ('--draft_scale_d_model 0.5 does nothing', 'timer_draft/timer_xl_draft')),
    Case('combinations', 'not an int', dict(spec_k='three'), ('--spec_k', "invalid int value: 'three'")),
    Case('combinations', 'misspelt flag', {}, ('unrecognized', '--sepc_k'), extra=['--sepc_k', '2']),
    Case('combinations', 'required flag left out', dict(model_id=None), ('--model_id',)),
    # ---- checkpoint folders written by training
    Case('folders', 'folder of another --root_path', {}, ('--root_path', '--overwrite_checkpoint'),
         trained_folder(dict(root_path='/data/other'))),
    Case('folders', 'folder trained with --use_norm', {}, ('--use_norm True there, False now',
                                                          '--overwrite_checkpoint'),
         trained_folder(dict(use_norm=True))),
    Case('folders', 'checkpoint without manifest', {}, ('manifest.json', '--overwrite_checkpoint'),
         trained_folder(manifest=False)),
    Case('folders', 'damaged manifest', {}, ('manifest.json', 'damaged'), damaged_manifest),
    Case('folders', '--model_id leaving --checkpoints', dict(model_id='../../x'), ('--model_id ../../x', 'plain name')),
    Case('folders', '--des with a folder in it', dict(des='a/b'), ('--des a/b', 'plain name')),
    Case('folders', 'folder name beyond the file system limit', dict(model_id='x' * 300),
         ('--checkpoints', 'bytes', '--model_id')),
    Case('folders', '--checkpoints below a file', dict(checkpoints='toy.csv/runs'), ('--checkpoints', 'is a file')),
    Case('folders', '--checkpoints not writable', dict(checkpoints='/proc/runs'), ('--checkpoints /proc/runs',
                                                                                   'cannot write')),
    Case('folders', '--checkpoints is a file', dict(checkpoints='toy.csv'), ('--checkpoints', 'not a folder')),
]
KINDS = ('data', 'lengths', 'checkpoints', 'combinations', 'folders')


def cases_of(kind):
    return [c for c in CASES if c.kind == kind]


def prepare(case, workdir):
    """toy.csv and whatever else the case needs in `workdir`; returns the run.py command line."""
    write_csv(workdir / 'toy.csv')
    argv = case.argv(workdir)
    if case.setup:
        case.setup(workdir, argv)
    return argv


def outcome(case, stderr_text, error):
    """clear error (exit status 2) / clear message, exit status 1 / unclear error / traceback / silent run."""
    if error is None:
        return 'silent run'
    if not isinstance(error, SystemExit):
        return 'traceback'
    lines = stderr_text.strip().splitlines()
    if len(lines) != 1 or not all(n in lines[0] for n in case.named):
        return 'unclear error'
    return 'clear error' if error.code == 2 else 'clear message, exit status 1'


def run_case(case):
    """(outcome, what the user sees last) of the case run in-process in a fresh working folder."""
    import run
    with tempfile.TemporaryDirectory() as tmp:
        workdir, cwd = Path(tmp), os.getcwd()
        stderr, error = io.StringIO(), None
        try:
            os.chdir(workdir)
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                run.main(prepare(case, workdir))
        except BaseException as caught:  # noqa: B036 - the table reports whatever happens
            error = caught
            if isinstance(caught, SystemExit) and isinstance(caught.code, str):
                stderr.write(caught.code)  # sys.exit(message): Python prints it at exit, with status 1
        finally:
            os.chdir(cwd)
        result = outcome(case, stderr.getvalue(), error)
        return result, last_words(result, stderr.getvalue(), error).replace(str(workdir), '.')


def last_words(result, stderr_text, error):
    if result == 'silent run':
        return '(ran to the end)'
    if result == 'traceback':
        return traceback.format_exception_only(error)[-1].strip()
    return stderr_text.strip().splitlines()[-1] if stderr_text.strip() else f'(exit status {error.code}, no message)'


def print_table():
    counts = {}
    print('| # | class | bad input | outcome | message |\n| --- | --- | --- | --- | --- |')
    for i, case in enumerate(CASES, 1):
        result, message = run_case(case)
        counts[result] = counts.get(result, 0) + 1
        print(f"| {i} | {case.kind} | {case.name} | {result} | {message.replace('|', '/')} |")
    print('\n' + ', '.join(f'{n} {result}' for result, n in sorted(counts.items())))


if __name__ == '__main__':
    torch.set_num_threads(1)
    sys.exit(print_table())

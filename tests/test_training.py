"""Training pipeline tests (training.md sections 1-7 and 10): run.py flow, setting strings, LR schedules,
early stopping, checkpoint saving/loading, input validation, metrics and the result file.

Everything runs on CPU with tiny models. The end-to-end test uses the offline ETTh1 file; the others use a
small synthetic CSV (general 70/10/20 split) so that whole training runs take well under a second.
"""
import math
import os
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.serialization

import run
from cli.parser import parse_flags
from cli.paths import checkpoint_folder, checkpoint_path, make_setting
from conftest import ETT_ROOT, cli_args, make_args, tiny_model
from data_provider.data_factory import get_loader
from exp.exp_forecast import RESUME_FILE, ExpForecast
from utils.checkpoint import CheckpointMismatch, load_checkpoint, save_checkpoint
from utils.failures import RunFailure
from utils.metrics import StreamingMetrics
from utils.records import FORECAST_RESULT_FILE, forecast_record
from utils.tools import EarlyStopping, learning_rate_at

# One whole record of result_long_term_forecast.txt: setting, two spaces, newline, metrics line, blank line.
RECORD = r'(?P<setting>[^\n]+)  \nmse:(?P<mse>[^,\n]+), mae:(?P<mae>[^\n]+)\n\n'

# Tiny model and window sizes for the synthetic CSV (P = O = 24, two tokens per window).
TINY = dict(d_model=16, n_heads=2, d_ff=32, e_layers=1, seq_len=48, input_token_len=24, output_token_len=24,
            test_seq_len=48, test_pred_len=24, batch_size=32, num_workers=0, learning_rate=3e-3)
BASE = dict(task_name='forecast', is_training=1, model_id='t', model='timer_xl', data='MultivariateDatasetBenchmark',
            input_token_len=96)  # the parser's default P (576) does not divide the default seq_len (672)


def argv(**flags):
    """run.py command line from keyword flags: True -> bare switch, False/None -> omitted."""
    return cli_args({**BASE, **flags})


def toy_flags(toy_workdir, **flags):
    paths = {'root_path': str(toy_workdir), 'data_path': 'toy.csv', 'checkpoints': str(toy_workdir / 'checkpoints')}
    return {**TINY, **paths, **flags}


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---- 1. end to end on ETTh1 --------------------------------------------------------------------------

@pytest.mark.data
@pytest.mark.slow
def test_end_to_end_etth1_train_test_reload_and_visualize(workdir, capsys):
    flags = dict(TINY, root_path=str(ETT_ROOT), data_path='ETTh1.csv', checkpoints=str(workdir / 'checkpoints'),
                 seq_len=192, input_token_len=96, output_token_len=96, test_seq_len=192, test_pred_len=96,
                 batch_size=256, train_epochs=1, subset_rand_ratio=0.02)
    train_argv = argv(**flags)
    setting = make_setting(run.parse_args(train_argv), 0)
    assert setting == ('forecast_t_timer_xl_MultivariateDatasetBenchmark_ETTh1_sl192_it96_ot96_lr0.003_bt256_wd0'
                       '_el1_dm16_dff32_nh2_cosFalse_test_0')

    run.main(train_argv)
    assert f'>>>>>>>start training : {setting}>>>>>>>>>>>>>>>>>>>>>>>>>>' in capsys.readouterr().out
    checkpoint = workdir / 'checkpoints' / setting / 'checkpoint.pth'
    saved = torch.load(checkpoint, map_location='cpu', weights_only=True)
    assert not any(k.startswith('module.') for k in saved)
    assert (workdir / 'test_results' / setting).is_dir()
    first = (workdir / FORECAST_RESULT_FILE).read_bytes().decode('utf-8')  # no newline translation
    match = re.fullmatch(RECORD, first)
    assert match, repr(first)
    assert match['setting'] == setting
    mse, mae = float(match['mse']), float(match['mae'])
    assert 0 < mse < 10 and 0 < mae < 10
    assert match['mse'] == str(np.float32(mse)) and match['mae'] == str(np.float32(mae))  # float32 str()

    # Test only, from the saved checkpoint, with plots: a second record with identical metrics.
    run.main(argv(**flags, is_training=0, test_dir=setting, visualize=True))
    both = (workdir / FORECAST_RESULT_FILE).read_bytes().decode('utf-8')  # no newline translation
    assert both.startswith(first)
    assert both[len(first):] == first  # same setting name (the --test_dir value) and byte-identical metrics

    # --visualize: one PNG for every even test batch index, under test_results/<setting>/<H>/.
    n_test = 2880 - 96 + 1  # ETTh test windows (data.md section 7)
    n_batches = math.ceil(n_test / 256)
    plots = workdir / 'test_results' / setting / '96'
    assert sorted(p.name for p in plots.iterdir()) == sorted(f'{i}.png' for i in range(0, n_batches, 2))
    assert all(p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' for p in plots.iterdir())


# ---- 2. training lowers the validation loss and reloads the best model --------------------------------

def test_training_lowers_validation_loss_and_returns_best_model(toy_workdir, capsys):
    args = run.parse_args(argv(**toy_flags(toy_workdir, train_epochs=4, patience=10)))
    run.seed_everything(args.seed)
    exp = ExpForecast(args)
    val_loader = get_loader(args, exp.datasets['val'], 'val')
    before = exp.vali(val_loader)

    exp.train(checkpoint_path(args))
    after = exp.vali(val_loader)

    assert after < 0.5 * before, (before, after)
    printed = [float(v) for v in re.findall(r'Vali Loss: (\S+)', capsys.readouterr().out)]
    assert len(printed) == 4
    assert after == pytest.approx(min(printed), abs=1e-6)  # the best epoch's weights are reloaded


def test_a_training_stopped_after_an_epoch_resumes_there_to_the_same_weights(toy_workdir, monkeypatch, capsys):
    """A run killed during epoch 3 of 4 keeps resume.pth of epoch 2; the same command then trains epochs 3-4 only
    and ends with the weights, the best epoch and the file of an uninterrupted run (dropout on: the random
    states are restored too)."""
    flags = toy_flags(toy_workdir, train_epochs=4, patience=10, dropout=0.3, lradj='type3')

    def trained(checkpoints, stop_in_epoch=None):
        args = run.parse_args(argv(**{**flags, 'checkpoints': str(toy_workdir / checkpoints)}))
        run.seed_everything(args.seed)
        exp = ExpForecast(args)
        if stop_in_epoch is not None:
            original = ExpForecast._train_epoch

            def stopping(self, loader, optimizer, epoch):
                if epoch == stop_in_epoch:
                    raise KeyboardInterrupt
                return original(self, loader, optimizer, epoch)
            monkeypatch.setattr(ExpForecast, '_train_epoch', stopping)
            with pytest.raises(KeyboardInterrupt):
                exp.train(checkpoint_path(args))
            monkeypatch.setattr(ExpForecast, '_train_epoch', original)
            return checkpoint_folder(args)
        exp.train(checkpoint_path(args))
        return snapshot(exp.bare_model), checkpoint_folder(args)

    uninterrupted, _ = trained('whole')
    folder = trained('split', stop_in_epoch=2)
    assert os.path.isfile(os.path.join(folder, RESUME_FILE))
    capsys.readouterr()
    resumed, folder = trained('split')
    out = capsys.readouterr().out
    assert 'epochs 1-2 of 4 are done' in out and len(re.findall(r'Vali Loss', out)) == 2
    assert states_equal(resumed, uninterrupted)
    assert not os.path.exists(os.path.join(folder, RESUME_FILE))


@pytest.mark.parametrize('is_test', [False, True], ids=['all-rows', 'last-O-rows'])
def test_vali_is_the_sample_weighted_mse_over_the_whole_split(toy_workdir, is_test):
    """17 val windows in batches of 8 + 8 + 1: a plain mean of the batch losses would differ."""
    args = run.parse_args(argv(**toy_flags(toy_workdir, batch_size=8)))
    exp = ExpForecast(args)
    dataset = exp.datasets['val']
    assert len(dataset) == 17
    x = torch.stack([torch.from_numpy(dataset[i][0]) for i in range(len(dataset))])
    y = torch.stack([torch.from_numpy(dataset[i][1]) for i in range(len(dataset))])
    exp.model.eval()
    with torch.no_grad():
        out = exp.model(x).mean
    rows = slice(-args.output_token_len, None) if is_test else slice(None)
    expected = torch.mean((out[:, rows].double() - y[:, rows].double()) ** 2).item()

    exp.model.train()
    assert exp.vali(get_loader(args, dataset, 'val'), is_test=is_test) == pytest.approx(expected, rel=1e-5)
    assert exp.model.training  # back in train mode afterwards


# ---- 3. setting strings (training.md section 3) -------------------------------------------------------

ETTH1_TARGET = dict(model_id='ETTh1', input_token_len=96, d_model=1024)
ETTH1_NAME = ('forecast_ETTh1_timer_xl_MultivariateDatasetBenchmark_ETTh1_sl672_it96_ot96_lr{lr}_bt32_wd{wd}'
              '_el1_dm1024_dff2048_nh8_cosFalse_test_0')


@pytest.mark.parametrize('flags, expected', [
    (ETTH1_TARGET, ETTH1_NAME.format(lr='0.0001', wd='0')),
    ({**ETTH1_TARGET, 'weight_decay': 0}, ETTH1_NAME.format(lr='0.0001', wd='0.0')),
    ({**ETTH1_TARGET, 'learning_rate': 5e-05}, ETTH1_NAME.format(lr='5e-05', wd='0')),
    (dict(task_name='pretrain', model_id='draft_pretrain_ECL_025x', model='timer_xl_draft', seq_len=1536,
          input_token_len=96, batch_size=64, cosine=True, d_model=512, n_heads=8, d_ff=2048, e_layers=5,
          root_path='./dataset/electricity/', data_path='electricity.csv'),
     'draft_pretrain_ECL_025x_timer_xl_draft_MultivariateDatasetBenchmark_electricity_sl1536_it96_ot96_lr0.0001_bt64'
     '_wd0_el1_dm128_dff512_nh2_cosTrue_test_0'),
    (dict(task_name='pretrain', model_id='draft_pretrain_all', model='timer_xl_draft', data='Utsd',
          root_path='./dataset/utsd/', data_path='ignored.csv'),  # a folder of files is named by its folder
     'draft_pretrain_all_timer_xl_draft_Utsd_utsd_sl672_it96_ot96_lr0.0001_bt32_wd0_el1_dm128_dff512_nh2_cosFalse'
     '_test_0'),
], ids=['forecast-default-wd', 'explicit-wd0', 'lr5e-05', 'pretrain-draft', 'folder-of-files'])
def test_setting_string(flags, expected):
    args = parse_flags(argv(**flags))  # the names of the files need not exist
    assert make_setting(args, 0) == expected
    assert make_setting(args, 3) == expected[:-1] + '3'


def test_pretrain_task_uses_the_forecast_experiment():
    assert run.experiment_class(make_args(**{**BASE, 'task_name': 'pretrain'})) is ExpForecast
    assert run.experiment_class(make_args(**BASE)) is ExpForecast


# ---- 4. learning-rate schedules ------------------------------------------------------------------------

@pytest.mark.parametrize('lradj, gamma', [('type1', 0.1), ('type2', 0.5), ('type3', 0.9), ('constant', 1.0)])
def test_step_schedule_values(lradj, gamma):
    args = make_args(learning_rate=1e-3, lradj=lradj)
    assert [learning_rate_at(args, e) for e in range(6)] == pytest.approx([1e-3 * gamma ** e for e in range(6)],
                                                                          rel=1e-12)


@pytest.mark.parametrize('lr0, tmax', [(1e-4, 10), (5e-5, 3), (1e-3, 1)])
def test_cosine_schedule_matches_torch_including_past_tmax(lr0, tmax):
    args = make_args(learning_rate=lr0, cosine=True, tmax=tmax, lradj='type1')  # --cosine overrides --lradj
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tmax, eta_min=1e-8)
    expected = []
    for _ in range(3 * tmax + 2):
        expected.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    got = [learning_rate_at(args, e) for e in range(len(expected))]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert got[tmax] == pytest.approx(1e-8) and got[2 * tmax] == pytest.approx(lr0)  # rises again past tmax


@pytest.mark.parametrize('schedule', [dict(lradj='type1'), dict(lradj='type3'), dict(cosine=True, tmax=2)],
                         ids=['type1', 'type3', 'cosine-tmax2'])
def test_train_runs_each_epoch_at_the_scheduled_rate(toy_workdir, monkeypatch, capsys, schedule):
    epochs = 4
    args = run.parse_args(argv(**toy_flags(toy_workdir, train_epochs=epochs, patience=100, learning_rate=1e-3, **schedule)))
    exp = ExpForecast(args)
    used = []
    train_epoch = exp._train_epoch

    def recording_train_epoch(loader, optimizer, epoch):
        used.append(optimizer.param_groups[0]['lr'])
        return train_epoch(loader, optimizer, epoch)

    monkeypatch.setattr(exp, '_train_epoch', recording_train_epoch)
    exp.train(checkpoint_path(args))
    assert used == pytest.approx([learning_rate_at(args, e) for e in range(epochs)], rel=1e-12)
    updates = [float(v) for v in re.findall(r'Updating learning rate to (\S+)', capsys.readouterr().out)]
    assert updates == pytest.approx([learning_rate_at(args, e) for e in range(1, epochs + 1)], rel=1e-12)


# ---- 5. early stopping ---------------------------------------------------------------------------------

def test_early_stopping_ties_save_and_patience_stops(capsys):
    saves = []
    stopper = EarlyStopping(patience=2, save=lambda: saves.append(epoch))
    history = []
    for epoch, loss in enumerate([3.0, 3.0, 2.0, 2.5, 2.0, 2.1, 2.2]):
        assert not stopper.early_stop
        stopper(loss)
        history.append((stopper.counter, stopper.early_stop))
    assert saves == [0, 1, 2, 4]  # the first epoch, the tie at 1 and the tie with the best at 4
    assert history == [(0, False), (0, False), (0, False), (1, False), (0, False), (1, False), (2, True)]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'Validation loss decreased (inf --> 3.000000).  Saving model ...'
    assert out[1] == 'Validation loss decreased (3.000000 --> 3.000000).  Saving model ...'
    assert out[3] == 'EarlyStopping counter: 1 out of 2'
    assert out[-1] == 'EarlyStopping counter: 2 out of 2'


@pytest.mark.parametrize('first_loss', [1e30, float('inf'), float('nan')])
def test_early_stopping_first_epoch_always_saves(first_loss):
    saves = []
    stopper = EarlyStopping(patience=1, save=lambda: saves.append(True))
    stopper(first_loss)
    assert saves == [True] and stopper.counter == 0 and not stopper.early_stop


def test_train_loop_stops_early_saves_on_ties_and_reloads_the_best(toy_workdir, monkeypatch, capsys):
    """Scripted validation losses drive ExpForecast.train: 1.0, 1.0 (tie), 2.0, 3.0 -> stop after 4 epochs."""
    args = run.parse_args(argv(**toy_flags(toy_workdir, train_epochs=10, patience=2)))
    exp = ExpForecast(args)
    scripted = iter([1.0, 1.0, 2.0, 3.0, 0.1, 0.1])
    epochs, saved = [], []
    train_epoch, save = exp._train_epoch, exp._save

    def recording_train_epoch(loader, optimizer, epoch):
        epochs.append(epoch)
        return train_epoch(loader, optimizer, epoch)

    def recording_save(path):
        save(path)
        saved.append(snapshot(exp.bare_model))

    monkeypatch.setattr(exp, '_train_epoch', recording_train_epoch)
    monkeypatch.setattr(exp, '_save', recording_save)
    monkeypatch.setattr(exp, 'vali', lambda loader, is_test=False, aligned_test=False:
                        0.0 if aligned_test else next(scripted))
    model = exp.train(checkpoint_path(args))

    assert epochs == [0, 1, 2, 3]
    assert len(saved) == 2 and not states_equal(saved[0], saved[1])  # the tie overwrote the first save
    assert states_equal(snapshot(exp.bare_model), saved[1])  # epoch 2's weights (the last save) are reloaded
    assert model is exp.model
    out = capsys.readouterr().out
    assert 'Early stopping' in out
    assert out.count('Updating learning rate to') == 3  # the stopping epoch breaks before the LR update


# ---- 6. checkpoint saving and loading ------------------------------------------------------------------

@pytest.mark.parametrize('wrap', [
    lambda s: s,
    lambda s: {f'module.{k}': v for k, v in s.items()},
    lambda s: {'state_dict': s, 'epoch': 3},
    lambda s: {'model': s, 'optimizer': {'lr': 1e-4}},
    lambda s: {'state_dict': {f'module.{k}': v for k, v in s.items()}},
], ids=['plain', 'module-prefix', 'state_dict-wrapper', 'model-wrapper', 'wrapper-and-prefix'])
def test_load_unwraps_and_strips_module_prefix(tmp_path, capsys, wrap):
    source, target = tiny_model(seed=1, **TINY), tiny_model(seed=2, **TINY)
    assert not states_equal(source.state_dict(), target.state_dict())
    path = tmp_path / 'ckpt.pth'
    torch.save(wrap(source.state_dict()), path)
    load_checkpoint(target, str(path))
    assert states_equal(source.state_dict(), target.state_dict())
    n = len(source.state_dict())
    assert capsys.readouterr().out.strip().endswith(f'loaded {path} ({n} tensors)')


def test_load_mismatch_lists_missing_unexpected_and_shape_keys_with_counts(tmp_path):
    model = tiny_model(**TINY)
    state = model.state_dict()
    del state['head.bias'], state['embedding.bias']
    state['extra.weight'] = torch.zeros(3)
    state['head.weight'] = torch.zeros(5, 16)
    path = tmp_path / 'bad.pth'
    torch.save(state, path)
    before = snapshot(model)
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(model, str(path))
    message = str(info.value)
    assert str(path) in message
    assert "missing keys (2): ['embedding.bias', 'head.bias']" in message
    assert "unexpected keys (1): ['extra.weight']" in message
    assert 'shape mismatches (1)' in message and 'head.weight: checkpoint (5, 16) vs model (24, 16)' in message
    assert states_equal(before, model.state_dict())  # nothing was half-loaded


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / 'nowhere' / 'checkpoint.pth'
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_checkpoint(tiny_model(**TINY), str(path))


def test_gpu_saved_checkpoint_loads_on_cpu(tmp_path, monkeypatch):
    """The file records its tensors' device: write one that says cuda:0 and check it still loads on CPU."""
    source, target = tiny_model(seed=1, **TINY), tiny_model(seed=2, **TINY)
    path = tmp_path / 'gpu.pth'
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, 'location_tag', lambda storage: 'cuda:0')
        torch.save(source.state_dict(), path)
    if not torch.cuda.is_available():  # the file really is "GPU": a plain load fails on this machine
        with pytest.raises(RuntimeError, match='CUDA'):
            torch.load(path, weights_only=True)
    load_checkpoint(target, str(path))
    assert states_equal(source.state_dict(), target.state_dict())
    assert all(v.device.type == 'cpu' for v in target.state_dict().values())


DRAFT = dict(d_model=64, n_heads=8, d_ff=64)  # timer_xl_draft sizes: draft dims 16/2/16/1
MAPPED_LINE = 'mapped head.* -> head_mean.*; head_logvar.* left at init (bias -2.0)'


def test_head_is_mapped_to_head_mean_for_a_stochastic_draft(tmp_path, capsys):
    deterministic = tiny_model('timer_xl_draft', 1, **{**TINY, **DRAFT})
    stochastic = tiny_model('timer_xl_draft', 2, **{**TINY, **DRAFT}, draft_stochastic=True)
    init_logvar = {k: v.clone() for k, v in stochastic.state_dict().items() if k.startswith('head_logvar.')}
    path = tmp_path / 'draft.pth'
    save_checkpoint(deterministic, str(path))
    capsys.readouterr()

    load_checkpoint(stochastic, str(path), map_head=True)
    assert capsys.readouterr().out.splitlines().count(MAPPED_LINE) == 1
    got, src = stochastic.state_dict(), deterministic.state_dict()
    for part in ('weight', 'bias'):
        assert torch.equal(got[f'head_mean.{part}'], src[f'head.{part}'])
        assert torch.equal(got[f'head_logvar.{part}'], init_logvar[f'head_logvar.{part}'])
    assert torch.all(got['head_logvar.bias'] == -2.0)
    shared = [k for k in src if not k.startswith('head')]
    assert shared and all(torch.equal(got[k], src[k]) for k in shared)


def test_adaptation_into_a_stochastic_draft_maps_the_head(toy_workdir, capsys):
    path = toy_workdir / 'draft.pth'
    deterministic = tiny_model('timer_xl_draft', 1, **{**TINY, **DRAFT})
    save_checkpoint(deterministic, str(path))
    args = run.parse_args(argv(**toy_flags(toy_workdir, model='timer_xl_draft', **DRAFT, draft_stochastic=True,
                                           adaptation=True, pretrain_model_path=str(path))))
    exp = ExpForecast(args)
    assert capsys.readouterr().out.splitlines().count(MAPPED_LINE) == 1
    assert torch.equal(exp.bare_model.head_mean.weight, deterministic.head.weight)


@pytest.mark.parametrize('saved_stochastic, hint', [(True, 'pass --draft_stochastic'),
                                                    (False, 'checkpoint is not stochastic')])
def test_load_stochastic_mismatch_gives_a_hint(tmp_path, saved_stochastic, hint):
    path = tmp_path / 'draft.pth'
    draft = partial(tiny_model, 'timer_xl_draft', **{**TINY, **DRAFT})
    save_checkpoint(draft(draft_stochastic=saved_stochastic), str(path))
    with pytest.raises(CheckpointMismatch, match=re.escape(hint)):
        load_checkpoint(draft(draft_stochastic=not saved_stochastic), str(path))


def test_save_is_atomic_and_overwrites(tmp_path, monkeypatch):
    folder = tmp_path / 'setting'
    path = folder / 'checkpoint.pth'
    first, second = tiny_model(seed=1, **TINY), tiny_model(seed=2, **TINY)
    save_checkpoint(first, str(path))
    save_checkpoint(second, str(path))
    assert os.listdir(folder) == ['checkpoint.pth']
    assert states_equal(torch.load(path, weights_only=True), second.state_dict())

    def crash_midway(obj, f, *a, **k):
        Path(f).write_bytes(b'half a checkpoint')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', crash_midway)
    with pytest.raises(RunFailure, match=r'could not write .*checkpoint\.pth \(\[Errno 28\] No space left on device\); '
                                         r'the previous file is kept'):
        save_checkpoint(first, str(path))
    monkeypatch.undo()
    assert os.listdir(folder) == ['checkpoint.pth']  # no temp file left behind
    assert states_equal(torch.load(path, weights_only=True), second.state_dict())  # old file intact


def test_frozen_parameters_are_not_saved_and_may_be_missing(tmp_path):
    model = tiny_model(**TINY)
    model.embedding.requires_grad_(False)
    path = tmp_path / 'c.pth'
    save_checkpoint(model, str(path))
    saved = torch.load(path, weights_only=True)
    assert 'embedding.weight' not in saved and 'embedding.bias' not in saved and 'head.weight' in saved
    other = tiny_model(seed=1, **TINY)
    other.embedding.requires_grad_(False)
    own_embedding = other.embedding.weight.detach().clone()
    load_checkpoint(other, str(path))  # the frozen keys are the only ones allowed to be missing
    assert states_equal({k: v for k, v in other.state_dict().items() if k in saved}, saved)
    assert torch.equal(other.embedding.weight, own_embedding)  # left as it was, not loaded from the file


# ---- 7. flags at the edge of their range are accepted (bad input: tests/test_validation.py) ---------------

@pytest.mark.parametrize('ratio', [1, 0.5, 1e-3])
def test_subset_ratio_in_range_is_accepted(toy_workdir, ratio):
    assert run.parse_args(argv(**toy_flags(toy_workdir, subset_rand_ratio=ratio))).subset_rand_ratio == ratio


# ---- 8. metrics and the result record -----------------------------------------------------------------

def test_streaming_metrics_equal_whole_array_numpy():
    rng = np.random.default_rng(3)
    true = (rng.uniform(0.5, 2.0, (37, 24, 3)) * rng.choice([-1, 1], (37, 24, 3))).astype(np.float32)
    pred = (true + rng.normal(0, 0.3, true.shape)).astype(np.float32)
    metrics = StreamingMetrics()
    for lo, hi in [(0, 5), (5, 6), (6, 20), (20, 37)]:  # uneven batches
        metrics.update(pred[lo:hi], true[lo:hi])
    result = metrics.result()

    p, t = pred.astype(np.float64), true.astype(np.float64)
    mse = np.mean((p - t) ** 2)
    expected = dict(mae=np.mean(np.abs(p - t)), mse=mse, rmse=np.sqrt(mse), mape=np.mean(np.abs((p - t) / t)),
                    mspe=np.mean(((p - t) / t) ** 2))
    assert result.keys() == expected.keys()
    for name, value in expected.items():
        assert type(result[name]) is np.float32, name
        assert result[name] == pytest.approx(value, rel=1e-6), name


def test_forecast_record_format():
    record = forecast_record('my_setting', np.float32(0.3612345), np.float32(0.3898765))
    assert record == 'my_setting  \nmse:0.3612345, mae:0.3898765\n\n'
    assert re.fullmatch(RECORD, record)

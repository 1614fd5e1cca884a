"""
Tests of training (train.py): a tiny model learns and logs, evaluation windows are fixed, resume is
exact, two DDP processes equal one with twice the batch, SIGTERM saves, a diverging run keeps its last
good checkpoint, and a resumed run keeps its checkpoint's model.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time
import types

import pytest
import torch

from dataset import Dataset
from model import GPT, GPTConfig
from train import to_device, train

def read_log(path):
    lines = [json.loads(l) for l in open(path)]
    return [l for l in lines if 'iter' in l]


def test_overfit_single_batch(tmp_path, monkeypatch, text_dataset, train_config):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    records = train(train_config(overfit_single_batch=True, max_iters=60, eval_interval=60,
                        learning_rate=1e-2, warmup_iters=5, eval_iters=1))
    assert records[0]['val_loss'] > 3.0  # ~ln(27) at init
    # the loss on the memorised batch: train once more and read the progress, via a direct forward
    ckpt = torch.load(tmp_path / 'out' / 'ckpt.pt', weights_only=True)
    model = GPT(GPTConfig(**ckpt['model_args']))
    model.load_state_dict(ckpt['model'])
    data = Dataset('tiny')
    x, y = to_device(data.batch('train', data.train_offsets(1337, 0, 32, 8), 32), torch.device('cpu'))
    _, losses = model(x, y)
    assert losses['loss'].item() < 1.0, losses['loss'].item()


def test_training_lowers_val_loss_and_writes_log(tmp_path, monkeypatch, text_dataset, train_config):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    records = train(train_config(max_iters=40, eval_interval=20, wavelet='learnable'))
    assert [r['iter'] for r in records] == [0, 20, 40]
    assert records[-1]['val_loss'] < records[0]['val_loss'] - 0.5
    lines = [json.loads(l) for l in open(tmp_path / 'out' / 'log.jsonl')]
    assert lines[0]['config']['wavelet'] == 'learnable' and 'torch' in lines[0]
    assert [l['iter'] for l in lines[1:]] == [0, 20, 40]
    assert {'train_loss', 'val_loss', 'lr', 'time', 'tokens'} <= set(lines[1])
    ckpt = torch.load(tmp_path / 'out' / 'ckpt.pt', weights_only=True)  # plain tensors and types only
    assert ckpt['iter_num'] == 40 and ckpt['config']['max_iters'] == 40
    assert not any(k.startswith('_orig_mod.') for k in ckpt['model'])


def test_eval_windows_are_fixed_across_runs_and_seeds(tmp_path, monkeypatch, text_dataset, train_config):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    read = []  # (split, offsets) of every batch the runs read
    batch = Dataset.batch
    monkeypatch.setattr(Dataset, 'batch', lambda self, split, offsets, T: read.append((split, list(offsets))) or
                        batch(self, split, offsets, T))
    runs = []
    for seed, out in ((1, 'a'), (2, 'b')):
        read.clear()
        train(train_config(eval_only=True, seed=seed, out_dir=out))
        runs.append([o for split, o in read if split == 'val'])
        train(train_config(max_iters=1, eval_interval=100, seed=seed, out_dir=out + '_train'))
        trains = [o for split, o in read if split == 'train']
        runs[-1] = (runs[-1], [o for o in trains if trains.count(o) == 1])  # not the evaluations' (read twice)
    (val_a, drawn_a), (val_b, drawn_b) = runs
    assert sum(map(len, val_a)) == 2 * 8  # eval_iters x batch_size windows
    assert val_a == val_b  # the same windows, in the same batches, whatever the seed
    assert len(drawn_a) == len(drawn_b) == 1 and drawn_a != drawn_b  # while the seed changes what training draws


def test_resume_is_exact(tmp_path, monkeypatch, text_dataset, train_config):
    """2N iterations straight == N, stop, resume for N more: identical losses and weights."""
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    kw = dict(max_iters=12, eval_interval=3, lr_decay_iters=12, dropout=0.1, wavelet='learnable')
    straight = train(train_config(out_dir='a', **kw))
    first = train(train_config(out_dir='b', **dict(kw, max_iters=6)))
    second = train(train_config(out_dir='b', init_from='resume', **kw))
    assert [r['val_loss'] for r in straight] == [r['val_loss'] for r in first + second]
    a = torch.load('a/ckpt.pt', weights_only=True)['model']
    b = torch.load('b/ckpt.pt', weights_only=True)['model']
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r['iter'] for r in read_log('b/log.jsonl')] == [0, 3, 6, 9, 12]


def test_ddp_two_processes_equal_one_process_with_double_batch(tmp_path, text_dataset, run_script, repo):
    text_dataset(tmp_path)
    common = ['--dataset=tiny', '--n_layer=2', '--n_head=2', '--n_embd=32', '--block_size=32', '--max_iters=4',
              '--eval_interval=2', '--eval_iters=2', '--device=cpu', '--wavelet=learnable', '--learning_rate=3e-3']
    one = run_script(['train.py', '--out_dir=one', '--batch_size=8'] + common, tmp_path)
    assert one.returncode == 0, one.stderr
    two = run_script(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                      os.path.join(repo, 'train.py'), '--out_dir=two', '--batch_size=4'] + common, tmp_path)
    assert two.returncode == 0, two.stderr
    la, lb = read_log(tmp_path / 'one' / 'log.jsonl'), read_log(tmp_path / 'two' / 'log.jsonl')
    assert len(la) == len(lb) == 3
    for ra, rb in zip(la, lb):
        assert ra['tokens'] == rb['tokens']
        assert math.isclose(ra['val_loss'], rb['val_loss'], rel_tol=1e-5)
        assert math.isclose(ra['train_loss'], rb['train_loss'], rel_tol=1e-5)
    a = torch.load(tmp_path / 'one' / 'ckpt.pt', weights_only=True)['model']
    b = torch.load(tmp_path / 'two' / 'ckpt.pt', weights_only=True)['model']
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # resumed on another number of processes with the same global batch, a run goes on as it began (README); with
    # its own batch_size there, which would double the global batch, it is refused, naming the batch_size that keeps it
    half = run_script(['train.py', '--out_dir=moved', '--batch_size=8', '--lr_decay_iters=4'] + common
                      + ['--max_iters=2'], tmp_path)
    assert half.returncode == 0, half.stderr
    doubled = run_script(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                          os.path.join(repo, 'train.py'), '--out_dir=moved', '--init_from=resume', '--batch_size=8',
                          '--lr_decay_iters=4'] + common, tmp_path)
    assert doubled.returncode != 0 and 'a global batch of 8 sequences' in doubled.stderr
    assert '16 (8 x 1 x 2 processes) (--batch_size=4 keeps it)' in doubled.stderr, doubled.stderr
    moved = run_script(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                        os.path.join(repo, 'train.py'), '--out_dir=moved', '--init_from=resume', '--batch_size=4',
                        '--lr_decay_iters=4'] + common, tmp_path)
    assert moved.returncode == 0, moved.stderr
    lm = read_log(tmp_path / 'moved' / 'log.jsonl')
    assert [r['iter'] for r in lm] == [0, 2, 4]
    for ra, rm in zip(la, lm):
        assert ra['tokens'] == rm['tokens']
        assert math.isclose(ra['val_loss'], rm['val_loss'], rel_tol=1e-5)
    m = torch.load(tmp_path / 'moved' / 'ckpt.pt', weights_only=True)['model']
    assert all(torch.allclose(a[k], m[k], atol=1e-5) for k in a)


def test_sigterm_saves_a_checkpoint(tmp_path, text_dataset, repo):
    text_dataset(tmp_path)
    args = [os.path.join(repo, 'train.py'), '--dataset=tiny', '--n_layer=2', '--n_head=2', '--n_embd=32',
            '--block_size=32', '--batch_size=4', '--max_iters=100000', '--eval_interval=100000', '--device=cpu',
            '--out_dir=out']
    e = dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS='1')
    p = subprocess.Popen([sys.executable] + args, cwd=tmp_path, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / 'out' / 'log.jsonl').exists():
        time.sleep(0.2)
    time.sleep(3)  # a few steps
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    ckpt = torch.load(tmp_path / 'out' / 'ckpt.pt', weights_only=True)
    assert ckpt['iter_num'] > 0
    assert 'init_from=resume' in out + err


@pytest.mark.parametrize('long', ['--gradient_accumulation_steps=100000000', '--eval_iters=100000000'])
def test_sigterm_inside_a_step_or_an_evaluation_that_would_take_hours(long, tmp_path, text_dataset, repo):
    """A red-team pass: SIGTERM waited for the step in flight, and a step of 10^8 micro-steps (or an evaluation of
    10^8 windows) ran on for minutes. Now the step is dropped and the run saved as it was before it, at once."""
    text_dataset(tmp_path)
    args = [os.path.join(repo, 'train.py'), '--dataset=tiny', '--n_layer=1', '--n_head=2', '--n_embd=16',
            '--block_size=16', '--batch_size=2', '--max_iters=100', '--eval_interval=100', '--device=cpu',
            '--out_dir=out', '--threads=1', long]
    p = subprocess.Popen([sys.executable] + args, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=repo),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / 'out' / 'log.jsonl').exists():
        time.sleep(0.2)
    time.sleep(2)  # inside the long step (or the first evaluation)
    p.send_signal(signal.SIGTERM)
    sent = time.time()
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and time.time() - sent < 30 and 'Traceback' not in err, err
    if 'accumulation' in long:  # stopped inside the first step: saved as it was before it
        assert torch.load(tmp_path / 'out' / 'ckpt.pt', weights_only=True)['iter_num'] == 0
        assert 'init_from=resume' in err


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, text_dataset, train_config, run_script):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    train(train_config(max_iters=4, eval_interval=4))
    good = (tmp_path / 'out' / 'ckpt.pt').read_bytes()
    r = run_script(['train.py', f'--out_dir={tmp_path / "out"}', '--init_from=resume',
                    '--dataset=tiny', '--max_iters=50', '--learning_rate=1e12', '--grad_clip=0.0',
                    '--warmup_iters=0', '--decay_lr=False', '--device=cpu', '--eval_interval=2',
                    '--resume_with_changes=True'], tmp_path)
    assert r.returncode == 1 and 'diverged' in r.stderr.strip().splitlines()[-1], r.stderr
    assert (tmp_path / 'out' / 'ckpt.pt').read_bytes() == good


def test_a_model_setting_that_contradicts_the_checkpoint_is_an_error(tmp_path, text_dataset, run_script):
    """Resume (and sample) keep the checkpoint's model: a different model setting is named with both
    values; settings that may change on resume (max_iters) still can; unset model keys come from it."""
    text_dataset(tmp_path)
    tiny = ['--dataset=tiny', '--n_layer=2', '--n_head=2', '--n_embd=32', '--block_size=32', '--batch_size=4',
            '--eval_interval=2', '--eval_iters=1', '--device=cpu', '--out_dir=out']
    assert run_script(['train.py', '--max_iters=2'] + tiny, tmp_path).returncode == 0
    before = (tmp_path / 'out' / 'ckpt.pt').read_bytes()
    r = run_script(['train.py', '--max_iters=4', '--init_from=resume'] + tiny[:-1] + ['--out_dir=out', '--block_size=16'],
                   tmp_path)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'block_size=32' in r.stderr and 'block_size=16' in r.stderr
    assert (tmp_path / 'out' / 'ckpt.pt').read_bytes() == before
    r = run_script(['train.py', '--max_iters=4', '--init_from=resume', '--dataset=tiny', '--device=cpu',
                    '--out_dir=out', '--eval_interval=2', '--eval_iters=1', '--batch_size=4'], tmp_path)
    assert r.returncode == 0, r.stderr  # n_layer etc. not given: taken from the checkpoint
    assert [rec['iter'] for rec in read_log(tmp_path / 'out' / 'log.jsonl')] == [0, 2, 4]
    r = run_script(['sample.py', '--out_dir=out', '--n_layer=3', '--max_new_tokens=5', '--device=cpu'], tmp_path)
    assert r.returncode == 1 and 'n_layer=2' in r.stderr and 'n_layer=3' in r.stderr, r.stderr
    r = run_script(['sample.py', '--out_dir=out', '--n_layer=2', '--max_new_tokens=5', '--device=cpu'], tmp_path)
    assert r.returncode == 0, r.stderr


def test_a_warmup_as_long_as_the_run_is_named(tmp_path, text_dataset, run_script):
    text_dataset(tmp_path)
    r = run_script(['train.py', '--dataset=tiny', '--n_layer=1', '--n_head=2', '--n_embd=16', '--block_size=16',
                    '--batch_size=4', '--max_iters=4', '--eval_interval=4', '--eval_iters=1', '--device=cpu'], tmp_path)
    assert r.returncode == 0 and 'warning: warmup_iters=200 is not below max_iters=4' in r.stderr, r.stderr


def test_tensorboard_gets_what_the_log_gets(tmp_path, monkeypatch, text_dataset, train_config):
    """tensorboard=True: every number of every log record, at its iteration (a stand-in writer here), and a
    one-line error before any work where the package is missing."""
    from errors import ConfigError
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    written = []

    class Writer:
        def __init__(self, folder):
            written.append(folder)

        def add_scalar(self, key, value, step):
            written.append((key, value, step))

        def close(self):
            written.append('closed')
    monkeypatch.setitem(sys.modules, 'torch.utils.tensorboard', types.SimpleNamespace(SummaryWriter=Writer))
    records = train(train_config(tensorboard=True, max_iters=4, eval_interval=2))
    assert written[0] == os.path.join(str(tmp_path / 'out'), 'tensorboard') and written[-1] == 'closed'
    assert ('val_loss', records[1]['val_loss'], 2) in written and sum(w[0] == 'step_loss' for w in written[1:-1]) == 4
    monkeypatch.setitem(sys.modules, 'torch.utils.tensorboard', None)  # not installed: the import fails
    with pytest.raises(ConfigError, match='pip install tensorboard'):
        train(train_config(tensorboard=True, out_dir='other'))
    assert not os.path.exists('other')

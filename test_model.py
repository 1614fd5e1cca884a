"""
Tests of the model, the wavelet operation, the data format and the training loop.
Run: python -m pytest -q   (CPU, a few minutes on 2 cores)
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from errors import ConfigError
from settings import TRAIN, parse_config
from dataset import DatasetError, open_split, read_meta, write_dataset
import model as model_module
from model import (GPT, GPTConfig, MovingAverage, Wavelet, causal_convolution, causal_moving_average,
                   toeplitz_convolution, wavelet_windows)
from train import batch_offsets, get_batch, train

VARIANTS = [dict(wavelet='none'), dict(wavelet='haar'), dict(wavelet='learnable'),
            dict(wavelet='haar', wavelet_pad='valid'), dict(wavelet='learnable', wavelet_max_kernel=4),
            dict(wavelet='ema'), dict(wavelet='haar', wavelet_window=8, wavelet_last=False),
            dict(wavelet='haar', head='fourier', fourier_freqs=8),
            dict(head='fourier', fourier_freqs=4, fourier_start=2, fourier_bins=20),
            dict(position='rope'), dict(attention='linear', position='rope'),
            dict(attention='linear', position='rope', wavelet='learnable', qk_norm=True)]


def small(**kw):
    args = dict(block_size=64, vocab_size=27, n_layer=2, n_head=2, n_embd=32)
    args.update(kw)
    return GPTConfig(**args)


def reference_average(x, windows, pad):
    """The spec's formula, literally, in float64: y[t] = (1/n) * sum_{s=t-k+1..t} x[s]."""
    x = x.double()
    y = x.clone()
    for i, k in enumerate(windows):
        for t in range(x.size(1)):
            window_sum = x[:, max(0, t - k + 1):t + 1, i].sum(1)
            y[:, t, i] = window_sum / (k if pad == 'zero' else min(t + 1, k))
    return y


# ---------------------------------------------------------------- the wavelet operation

def test_windows_follow_the_dyadic_ladder():
    windows = wavelet_windows(GPTConfig(n_embd=128, block_size=512))
    assert len(windows) == 64
    assert windows[0] == 2 and windows[-1] == 512
    assert sorted(set(windows)) == [2 ** l for l in range(1, 10)]  # levels I..IX
    assert windows == sorted(windows)


@pytest.mark.parametrize('pad', ['zero', 'valid'])
@pytest.mark.parametrize('T', [1, 7, 64])
def test_haar_equals_float64_reference(pad, T):
    torch.manual_seed(0)
    cfg = small(wavelet='haar', wavelet_pad=pad)
    x = torch.randn(3, T, 32)
    y = Wavelet(cfg)(x)
    windows = wavelet_windows(cfg)
    ref = reference_average(x, windows, pad)
    assert torch.allclose(y.double(), ref, atol=1e-5)
    assert torch.equal(y[..., len(windows):], x[..., len(windows):])  # the other half is untouched


@pytest.mark.parametrize('pad', ['zero', 'valid'])
@pytest.mark.parametrize('cap', [0, 4])
def test_learnable_at_init_equals_haar(pad, cap):
    torch.manual_seed(0)
    x = torch.randn(2, 64, 32)
    haar = Wavelet(small(wavelet='haar', wavelet_pad=pad))(x)
    learn = Wavelet(small(wavelet='learnable', wavelet_pad=pad, wavelet_max_kernel=cap))(x)
    assert torch.allclose(haar, learn, atol=1e-5)


@pytest.mark.parametrize('pad', ['zero', 'valid'])
def test_ema_control_equals_reference(pad):
    torch.manual_seed(0)
    cfg = small(wavelet='ema', wavelet_pad=pad)
    x = torch.randn(2, 40, 32)
    y = Wavelet(cfg)(x).double()
    for i, k in enumerate(wavelet_windows(cfg)):
        a = 2 / (k + 1)
        for t in range(40):
            w = torch.tensor([a * (1 - a) ** j for j in range(t + 1)], dtype=torch.float64)
            ref = (x[:, :t + 1, i].flip(1).double() * w).sum(1) / (w.sum() if pad == 'valid' else 1)
            assert torch.allclose(y[:, t, i], ref, atol=1e-5)


def test_single_window_ablation_uses_one_window():
    cfg = small(wavelet='haar', wavelet_window=8)
    assert wavelet_windows(cfg) == [8] * 16
    x = torch.randn(1, 20, 32)
    assert torch.allclose(Wavelet(cfg)(x).double(), reference_average(x, [8] * 16, 'zero'), atol=1e-5)


def test_learnable_model_at_init_equals_haar_model():
    torch.manual_seed(0)
    idx = torch.randint(0, 27, (2, 64))
    torch.manual_seed(1)
    haar = GPT(small(wavelet='haar'))
    torch.manual_seed(1)
    learn = GPT(small(wavelet='learnable'))
    learn.load_state_dict(haar.state_dict(), strict=False)
    assert torch.allclose(haar(idx, idx)[0], learn(idx, idx)[0], atol=1e-4)


def test_learnable_kernels_get_gradients_and_change_the_output():
    torch.manual_seed(0)
    model = GPT(small(wavelet='learnable'))
    idx = torch.randint(0, 27, (2, 64))
    _, loss = model(idx, idx)
    loss.backward()
    kernels = [p for n, p in model.named_parameters() if '.wavelet.' in n]
    assert kernels and all(p.grad is not None and p.grad.abs().sum() > 0 for p in kernels)


def test_wavelet_runs_in_float32_under_autocast():
    x = (torch.randn(2, 64, 32) * 100).to(torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = Wavelet(small(wavelet='haar'))(x)
    assert y.dtype == torch.bfloat16
    ref = reference_average(x.float(), wavelet_windows(small()), 'zero')
    # rounding only at the output (bf16 has 8 bits of mantissa), not accumulated along T
    assert torch.allclose(y.double(), ref.to(torch.bfloat16).double(), rtol=1e-2, atol=1e-1)


@pytest.mark.parametrize('variant', VARIANTS, ids=lambda v: '-'.join(map(str, v.values())))
def test_causal(variant):
    """Changing tokens at positions >= p changes no logit before p."""
    torch.manual_seed(0)
    model = GPT(small(**variant)).eval()
    a = torch.randint(0, 27, (2, 64))
    for p in (1, 17, 40, 63):
        b = a.clone()
        b[:, p:] = torch.randint(0, 27, (2, 64 - p))
        la, _ = model(a, a)
        lb, _ = model(b, b)
        assert torch.allclose(la[:, :p], lb[:, :p], atol=1e-5)
        assert not torch.allclose(la[:, p:], lb[:, p:])  # and the change is seen afterwards


# ---------------------------------------------------------------- the fast forms, against the plain ones

@pytest.mark.parametrize('pad', ['zero', 'valid'])
@pytest.mark.parametrize('T', [1, 50, 100])  # 100 > block_size: indices computed, not sliced
def test_moving_average_with_its_own_backward_equals_the_plain_form(pad, T):
    cfg = small(wavelet='haar', wavelet_pad=pad)
    wavelet = Wavelet(cfg).double()
    window = torch.tensor(wavelet_windows(cfg), dtype=torch.float64)
    x = torch.randn(3, T, 16, dtype=torch.float64, requires_grad=True)
    fast = MovingAverage.apply(x, *wavelet.indices(T))
    plain = causal_moving_average(x, window, pad == 'valid')
    assert torch.allclose(fast, plain, atol=1e-12)
    g = torch.randn_like(fast)
    assert torch.allclose(torch.autograd.grad(fast, x, g)[0], torch.autograd.grad(plain, x, g)[0], atol=1e-12)
    first4 = [i[:, :4] for i in wavelet.indices(T)]  # a few coordinates: gradcheck perturbs every input
    assert torch.autograd.gradcheck(lambda x: MovingAverage.apply(x, *first4), (x[:, :, :4].detach().requires_grad_(),))


def reference_convolution(x, kernel):
    """y[t, i] = sum over lag <= t of kernel[lag, i] x[t - lag, i], literally, in float64."""
    y = torch.zeros(x.shape, dtype=torch.float64)
    for t in range(x.size(1)):
        for lag in range(min(t + 1, kernel.size(0))):
            y[:, t] += kernel[lag].double() * x[:, t - lag].double()
    return y


@pytest.mark.parametrize('L', [3, 40, 90])  # a kernel shorter than, as long as, and longer than T
def test_toeplitz_and_fft_convolutions_equal_the_formula_and_each_other(L):
    x = torch.randn(2, 40, 5, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(L, 5, dtype=torch.float64, requires_grad=True)
    fft, toeplitz = causal_convolution(x, kernel), toeplitz_convolution(x, kernel)
    assert torch.allclose(fft, reference_convolution(x.detach(), kernel.detach()), atol=1e-10)
    assert torch.allclose(toeplitz, fft, atol=1e-10)
    g = torch.randn_like(fft)
    for a, b in zip(torch.autograd.grad(fft, (x, kernel), g), torch.autograd.grad(toeplitz, (x, kernel), g)):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize('variant', [dict(wavelet='learnable', wavelet_max_kernel=4, wavelet_pad='valid'),
                                     dict(wavelet='learnable'), dict(wavelet='ema')], ids=str)
def test_a_model_trains_the_same_with_either_convolution(variant, monkeypatch):
    """The form convolve() picks on a GPU (Toeplitz matmuls), in a whole model: loss and gradients."""
    def loss_and_grads():
        torch.manual_seed(0)
        model = GPT(small(**variant))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))  # kernels that are no longer boxes
        idx = torch.randint(0, 27, (2, 64))
        _, loss = model(idx, idx)
        loss.backward()
        return [loss] + [p.grad for p in model.parameters()]
    fft = loss_and_grads()
    monkeypatch.setattr(model_module, 'convolve', toeplitz_convolution)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fft, loss_and_grads()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('variant', [dict(wavelet='haar'), dict(wavelet='learnable', wavelet_pad='valid')], ids=str)
def test_the_wavelet_on_cuda_equals_the_cpu(variant):
    """What convolve() and MovingAverage run on a GPU, forward and backward, in float32 and under bf16 autocast."""
    torch.manual_seed(0)
    wavelet = Wavelet(small(**variant))
    x = torch.randn(4, 64, 32, requires_grad=True)
    g = torch.randn(4, 64, 32)
    y = wavelet(x)
    gx, = torch.autograd.grad(y, x, g)
    xc = x.detach().cuda().requires_grad_()
    yc = wavelet.cuda()(xc)
    assert torch.allclose(yc.cpu(), y, atol=1e-5)
    assert torch.allclose(torch.autograd.grad(yc, xc, g.cuda())[0].cpu(), gx, atol=1e-5)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        yb = wavelet(xc)
    assert torch.allclose(yb.float().cpu(), y, atol=0.05, rtol=0.02)  # bf16 products, float32 sums


def test_learnable_kernel_layout():
    """kernel() puts coordinate i's taps at lags 0 .. k_i - 1, a capped tap repeated k/c times."""
    wavelet = Wavelet(small(wavelet='learnable', wavelet_max_kernel=4))
    with torch.no_grad():
        for w in wavelet.kernels:
            w.copy_(torch.randn_like(w))
    kernel = wavelet.kernel()
    windows = wavelet_windows(small())
    assert kernel.shape == (max(windows), len(windows))
    for (a, b, k), c, w in zip(wavelet.groups, wavelet.taps, wavelet.kernels):
        for i in range(a, b):
            assert torch.equal(kernel[:k, i], w[i - a].repeat_interleave(k // c))
            assert not kernel[k:, i].any()


# ---------------------------------------------------------------- parameters and checkpoints

def test_haar_adds_no_parameters_and_shares_state_dict_with_none():
    torch.manual_seed(0)
    none, haar = GPT(GPTConfig(wavelet='none')), GPT(GPTConfig(wavelet='haar'))
    assert none.get_num_params() == haar.get_num_params()
    haar.load_state_dict(none.state_dict(), strict=True)
    none.load_state_dict(haar.state_dict(), strict=True)


def test_learnable_parameter_counts_at_paper_config():
    base = GPT(GPTConfig()).get_num_params()
    full = GPT(GPTConfig(wavelet='learnable')).get_num_params() - base
    capped = GPT(GPTConfig(wavelet='learnable', wavelet_max_kernel=32)).get_num_params() - base
    windows = wavelet_windows(GPTConfig())
    assert full == 10 * sum(windows) == 71_560
    assert capped == 10 * sum(min(k, 32) for k in windows) == 13_320
    last_off = GPT(GPTConfig(wavelet='learnable', wavelet_last=False)).get_num_params() - base
    assert last_off == 9 * sum(windows)


def test_bad_model_options_are_clear_errors():
    for kw, words in [(dict(wavelet='db4'), 'wavelet'), (dict(wavelet_pad='edge'), 'wavelet_pad'),
                      (dict(n_embd=30, n_head=4), 'n_head'),
                      (dict(wavelet='learnable', wavelet_max_kernel=3), 'wavelet_max_kernel'),
                      (dict(wavelet='haar', wavelet_frac=1.5), 'wavelet_frac')]:
        with pytest.raises(ValueError, match=words):
            GPT(small(**kw))


# ---------------------------------------------------------------- data

@pytest.mark.parametrize('dtype,vocab', [('uint8', 27), ('uint8', 256), ('uint16', 388), ('uint16', 65_536)])
def test_dataset_round_trip(tmp_path, dtype, vocab):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=5000)
    ids[0] = vocab - 1
    d = str(tmp_path / 'data' / 'x')
    write_dataset(d, {'train': ids[:4000], 'val': ids[4000:]}, dict(vocab_size=vocab, dtype=dtype))
    meta = read_meta(d)
    assert meta['dtype'] == dtype and meta['tokens'] == {'train': 4000, 'val': 1000}
    data = open_split(d, meta, 'train')
    assert data.dtype == np.dtype(dtype) and np.array_equal(data, ids[:4000])
    x, y = get_batch(data, np.array([0, 100]), 8, torch.device('cpu'))
    assert x.dtype == torch.int64 and torch.equal(x[1], torch.from_numpy(ids[100:108]))
    assert torch.equal(y[:, :-1], x[:, 1:])


def test_rewriting_a_dataset_replaces_it_whole(tmp_path):
    d = str(tmp_path / 'data' / 'x')
    write_dataset(d, {'train': np.zeros(100), 'val': np.zeros(10)}, dict(vocab_size=27))
    with pytest.raises(DatasetError):  # a failed rewrite leaves the old dataset untouched
        write_dataset(d, {'train': np.full(50, 99), 'val': np.zeros(5)}, dict(vocab_size=27))
    assert read_meta(d)['tokens'] == {'train': 100, 'val': 10}
    assert sorted(os.listdir(tmp_path / 'data')) == ['x']


# ---------------------------------------------------------------- training

def read_log(path):
    lines = [json.loads(l) for l in open(path)]
    return [l for l in lines if 'iter' in l]


# ---------------------------------------------------------------- training

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
    data = open_split(str(tmp_path / 'data' / 'tiny'), ckpt['meta'], 'train')
    x, y = get_batch(data, batch_offsets(1337, 0, len(data), 32, 8), 32, torch.device('cpu'))
    _, loss = model(x, y)
    assert loss.item() < 1.0, loss.item()


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
    a = train(train_config(eval_only=True, seed=1))
    b = train(train_config(eval_only=True, seed=1))
    assert a[0]['val_loss'] == b[0]['val_loss']


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


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, text_dataset, train_config, run_script):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    train(train_config(max_iters=4, eval_interval=4))
    good = (tmp_path / 'out' / 'ckpt.pt').read_bytes()
    r = run_script(['train.py', f'--out_dir={tmp_path / "out"}', '--init_from=resume',
                    '--dataset=tiny', '--max_iters=50', '--learning_rate=1e12', '--grad_clip=0.0',
                    '--warmup_iters=0', '--decay_lr=False', '--device=cpu', '--eval_interval=2'], tmp_path)
    assert r.returncode == 1 and 'diverged' in r.stderr.strip().splitlines()[-1], r.stderr
    assert (tmp_path / 'out' / 'ckpt.pt').read_bytes() == good


# ---------------------------------------------------------------- clear errors

def test_config_errors():
    with pytest.raises(ConfigError, match='unknown setting .n_layers.*did you mean n_layer'):
        parse_config(['--n_layers=4'], TRAIN)
    with pytest.raises(ConfigError, match='should be a int'):
        parse_config(['--n_layer=4.5'], TRAIN)
    with pytest.raises(ConfigError, match='should be a bool'):
        parse_config(['--compile=1'], TRAIN)
    assert parse_config(['--learning_rate=1', '--wavelet=haar'], TRAIN)[0]['learning_rate'] == 1.0


@pytest.mark.parametrize('damage,words', [
    ('no_meta', 'meta.json missing'),
    ('truncated', 'truncated'),
    ('odd_size', 'not a multiple'),
    ('big_ids', '>= vocab_size'),
])
def test_bad_dataset_is_a_one_line_error(tmp_path, damage, words, text_dataset, run_script):
    d = text_dataset(tmp_path, dtype='uint16', vocab=300)
    train_bin = os.path.join(d, 'train.bin')
    if damage == 'no_meta':
        os.remove(os.path.join(d, 'meta.json'))
    elif damage == 'truncated':
        os.truncate(train_bin, os.path.getsize(train_bin) - 100)
    elif damage == 'odd_size':
        with open(train_bin, 'ab') as f:
            f.write(b'\0')
    elif damage == 'big_ids':
        np.full(10, 299, dtype=np.uint16).tofile(train_bin + '.x')
        data = np.fromfile(train_bin, dtype=np.uint16)
        data[5] = 5000
        data.tofile(train_bin)
    r = run_script(['train.py', '--dataset=tiny', '--device=cpu'], tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
    # the fix: the command recorded in meta.json, or a pointer to the prepare scripts
    assert ('python prepare/tiny.py' if damage != 'no_meta' else '--out data/tiny') in lines[0], r.stderr


def test_bad_config_is_a_one_line_error(tmp_path, run_script):
    r = run_script(['train.py', '--wavelet=daubechies'], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [r.stderr.strip()]
    r = run_script(['train.py', 'config/nope.py'], tmp_path)
    assert r.returncode == 1 and 'does not exist' in r.stderr


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


def test_sample_prints_text(tmp_path, monkeypatch, text_dataset, train_config, run_script):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    train(train_config(max_iters=4, eval_interval=4))
    r = run_script(['sample.py', f'--out_dir={tmp_path / "out"}', '--start=the cat',
                    '--max_new_tokens=20', '--num_samples=2', '--device=cpu'], tmp_path)
    assert r.returncode == 0, r.stderr
    samples = [s.strip('\n') for s in r.stdout.split('-' * 40) if s.strip()]
    assert len(samples) == 2 and all(s.startswith('the cat') and len(s) == 27 for s in samples)

"""
Tests of the model (model.py): the wavelet operation against float64 references and in each of its
forms, causality for every option, parameter counts and shared state dicts, the losses forward
returns, and the model's own one-line errors. Training runs are in test_train.py, the data format in
test_dataset.py, generation in test_generate.py.
Run: python -m pytest -q   (CPU, a few minutes on 2 cores)
"""
import math
from dataclasses import replace

import pytest
import torch

import model as model_module
from model import (GPT, GPTConfig, MovingAverage, Wavelet, causal_convolution, causal_moving_average,
                   rope_tables, rotate, toeplitz_convolution, wavelet_windows)

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
    _, losses = model(idx, idx)
    losses['loss'].backward()
    kernels = [p for n, p in model.named_parameters() if '.wavelet.' in n]
    assert kernels and all(p.grad is not None and p.grad.abs().sum() > 0 for p in kernels)
    # the gradient of one tap against a central difference (eps large enough for float32's rounding of the loss),
    # and a step on the kernels alone changes the output and lowers the loss
    w = kernels[1]
    tap = (w.grad.abs() == w.grad.abs().max()).nonzero()[0].tolist()
    loss = lambda: model(idx, idx)[1]['loss'].item()
    with torch.no_grad():
        before, old = model(idx)[0].clone(), loss()
        w[tuple(tap)] += 1e-2
        up = loss()
        w[tuple(tap)] -= 2e-2
        down = loss()
        w[tuple(tap)] += 1e-2
        assert (up - down) / 2e-2 == pytest.approx(w.grad[tuple(tap)].item(), rel=2e-2)
        for p in kernels:
            p -= 0.05 * p.grad / p.grad.norm()
        assert (model(idx)[0] - before).abs().max() > 1e-3 and loss() < old


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


def test_rope_turns_each_pair_by_its_angle_and_keeps_differences():
    """rotate(x, *rope_tables(p, D)) against the rotation written out in float64: the pair (x_i, x_{i+D/2}) at
    position p turned by p * 10000^(-2i/D); and q . k unchanged when both positions move by the same."""
    D, half = 8, 4
    x = torch.randn(2, 4, D)
    p = torch.tensor([0, 1, 7, 300])
    y = rotate(x, *rope_tables(p, D))
    for t in range(4):
        for i in range(half):
            a = p[t].item() * 10000.0 ** (-i / half)
            x1, x2 = x[:, t, i].double(), x[:, t, i + half].double()
            assert torch.allclose(y[:, t, i].double(), x1 * math.cos(a) - x2 * math.sin(a), atol=1e-4)
            assert torch.allclose(y[:, t, i + half].double(), x2 * math.cos(a) + x1 * math.sin(a), atol=1e-4)
    q, k = torch.randn(D), torch.randn(D)

    def dot(m, n):
        return (rotate(q, *rope_tables(torch.tensor(m), D)) * rotate(k, *rope_tables(torch.tensor(n), D))).sum()
    assert dot(5, 2) == pytest.approx(dot(105, 102).item(), abs=1e-4) and dot(5, 2) != pytest.approx(dot(5, 3).item())


@pytest.mark.parametrize('variant', VARIANTS, ids=lambda v: '-'.join(map(str, v.values())))
def test_training_changes_no_buffer(variant):
    """Every buffer is a constant of the config (train.py's DDP sends none of them at each step): a training
    step, the GPU's forms forced too, leaves them all as they were."""
    torch.manual_seed(0)
    model = GPT(small(**variant))
    before = {name: b.clone() for name, b in model.named_buffers()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    idx = torch.randint(0, 27, (2, 64))
    for forms in (None, 'cuda'):
        model_module.FORMS_OF = forms
        try:
            model(idx, idx)[1]['loss'].backward()
        finally:
            model_module.FORMS_OF = None
        opt.step()
    assert all(torch.equal(b, before[name]) for name, b in model.named_buffers())


# ---------------------------------------------------------------- the fast forms, against the plain ones

@pytest.fixture
def float64_default():
    """Modules built in float64 from the start: their buffers computed in it, not float32 ones cast."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize('pad', ['zero', 'valid'])
@pytest.mark.parametrize('T', [1, 50, 64, 100])  # 64 = block_size: the buffers; the others computed
def test_moving_average_with_its_own_backward_equals_the_plain_form(pad, T, float64_default):
    torch.manual_seed(0)
    cfg = small(wavelet='haar', wavelet_pad=pad)
    wavelet = Wavelet(cfg)
    window = torch.tensor(wavelet_windows(cfg), dtype=torch.float64)
    x = torch.randn(3, T, 32, requires_grad=True)  # the first 16 averaged, the rest kept
    fast = MovingAverage.apply(x, *wavelet.indices(T))
    plain = torch.cat([causal_moving_average(x[..., :16], window, pad == 'valid'), x[..., 16:]], -1)
    assert torch.allclose(fast, plain, rtol=0, atol=1e-12)
    g = torch.randn_like(fast)
    assert torch.allclose(torch.autograd.grad(fast, x, g)[0], torch.autograd.grad(plain, x, g)[0], rtol=0, atol=1e-12)
    # a few coordinates (gradcheck perturbs every input), and as many more left alone: their gradient passes through
    first4 = [None if i is None else i[:4] for i in wavelet.indices(T)]
    assert torch.autograd.gradcheck(lambda x: MovingAverage.apply(x, *first4), (x[:, :, :8].detach().requires_grad_(),))


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
    assert torch.allclose(fft, reference_convolution(x.detach(), kernel.detach()), rtol=0, atol=1e-10)
    assert torch.allclose(toeplitz, fft, rtol=0, atol=1e-10)
    g = torch.randn_like(fft)
    for a, b in zip(torch.autograd.grad(fft, (x, kernel), g), torch.autograd.grad(toeplitz, (x, kernel), g)):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize('pad,cap,T,levels', [('zero', 0, 64, 0), ('valid', 4, 64, 0), ('zero', 0, 40, 0),
                                              ('valid', 0, 17, 0), ('zero', 0, 64, 3), ('valid', 2, 50, 2)])
def test_the_gpu_learnable_form_equals_the_plain_one(pad, cap, T, levels, monkeypatch):
    """ToeplitzConvolution (what a GPU runs: M one gather from the kernels, their gradient one strided sum
    of diagonals, the stream written without a cat) against the FFT form and a cat, in float64: the output
    and every gradient, the taps' included, for kernels that are no longer boxes, shorter sequences, and
    kernels shorter than the sequence (levels: windows of at most 2^levels)."""
    torch.manual_seed(0)
    wavelet = Wavelet(small(wavelet='learnable', wavelet_pad=pad, wavelet_max_kernel=cap, wavelet_levels=levels)).double()
    with torch.no_grad():
        for p in wavelet.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(3, T, 32, dtype=torch.float64, requires_grad=True)
    y = causal_convolution(x[..., :16], wavelet.kernel())
    if pad == 'valid':
        y = y * wavelet.scale[torch.arange(T).clamp(max=wavelet.span - 1)]
    plain = torch.cat([y, x[..., 16:]], -1)
    monkeypatch.setattr(model_module, 'FORMS_OF', 'cuda')
    fast = wavelet(x)
    assert type(fast.grad_fn).__name__ == 'ToeplitzConvolutionBackward'
    assert torch.allclose(fast, plain, rtol=0, atol=1e-12)
    g = torch.randn_like(plain)
    inputs = [x] + list(wavelet.parameters())
    for a, b in zip(torch.autograd.grad(fast, inputs, g), torch.autograd.grad(plain, inputs, g)):
        assert torch.allclose(a, b, rtol=0, atol=1e-11)


def test_the_gpu_learnable_form_under_bf16_autocast(monkeypatch):
    """Under autocast its products are bf16, its sums float32: within bf16's rounding of the float32 result."""
    torch.manual_seed(0)
    wavelet = Wavelet(small(wavelet='learnable'))
    x = torch.randn(2, 64, 32, requires_grad=True)
    monkeypatch.setattr(model_module, 'FORMS_OF', 'cuda')
    exact = wavelet(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        rounded = wavelet(x)
    assert rounded.dtype == torch.float32 and torch.equal(rounded[..., 16:], x[..., 16:])
    assert (rounded - exact)[..., :16].abs().max() < 2e-2 * exact[..., :16].abs().max()
    g = torch.randn_like(exact)
    for a, b in zip(torch.autograd.grad(rounded, [x, *wavelet.parameters()], g),
                    torch.autograd.grad(exact, [x, *wavelet.parameters()], g)):
        assert (a - b).abs().max() < 2e-2 * b.abs().max()


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
        _, losses = model(idx, idx)
        losses['loss'].backward()
        return [losses['loss']] + [p.grad for p in model.parameters()]
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
    # bf16 products, float32 sums: each input and the output rounded once (2^-9 of the terms' size each), never
    # along the window; the terms' size is the same average of |x| (boxes at init), so the bound is per element
    with torch.no_grad():
        scale = wavelet.cpu()(x.abs())
    assert ((yb.float().cpu() - y).abs() <= 2 ** -6 * scale + 1e-6).all()


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
    none, haar = GPT(GPTConfig(wavelet='none', vocab_size=27)), GPT(GPTConfig(wavelet='haar', vocab_size=27))
    assert none.get_num_params() == haar.get_num_params()
    haar.load_state_dict(none.state_dict(), strict=True)
    none.load_state_dict(haar.state_dict(), strict=True)


def test_learnable_parameter_counts_at_paper_config():
    paper = GPTConfig(vocab_size=27)  # text8's characters
    base = GPT(paper).get_num_params()
    full = GPT(replace(paper, wavelet='learnable')).get_num_params() - base
    capped = GPT(replace(paper, wavelet='learnable', wavelet_max_kernel=32)).get_num_params() - base
    windows = wavelet_windows(GPTConfig())
    assert full == 10 * sum(windows) == 71_560
    assert capped == 10 * sum(min(k, 32) for k in windows) == 13_320
    last_off = GPT(replace(paper, wavelet='learnable', wavelet_last=False)).get_num_params() - base
    assert last_off == 9 * sum(windows)


def test_bad_model_options_are_clear_errors():
    for kw, words in [(dict(wavelet='db4'), 'wavelet'), (dict(wavelet_pad='edge'), 'wavelet_pad'),
                      (dict(n_embd=30, n_head=4), 'n_head'),
                      (dict(wavelet='learnable', wavelet_max_kernel=3), 'wavelet_max_kernel'),
                      (dict(wavelet='haar', wavelet_frac=1.5), 'wavelet_frac')]:
        with pytest.raises(ValueError, match=words):
            GPT(small(**kw))


# ---------------------------------------------------------------- what forward returns, what a config takes from data

def test_forward_returns_what_training_needs():
    """The loss to minimise and its parts, named: the log and the loop never ask which head it is."""
    torch.manual_seed(0)
    idx = torch.randint(0, 27, (2, 16))
    logits, losses = GPT(small()).eval()(idx, idx)
    assert set(losses) == {'loss', 'nll'} and torch.equal(losses['loss'], losses['nll'])
    assert losses['nll'].item() == pytest.approx(torch.nn.functional.cross_entropy(logits.view(-1, 27), idx.view(-1)).item())
    _, losses = GPT(small(head='fourier', fourier_freqs=4)).eval()(idx, idx)
    assert set(losses) == {'loss', 'nll', 'regulariser'}
    assert losses['loss'].item() == pytest.approx((losses['nll'] + losses['regulariser']).item())
    last, none = GPT(small()).eval()(idx)
    assert last.shape == (2, 1, 27) and none is None
    # counted by hand: wte 27 x 32 = 864; a block 64 (ln_1) + 3,168 (c_attn 32 x 96 + 96) + 1,056 (c_proj) + 64
    # (ln_2) + 4,224 (c_fc 32 x 128 + 128) + 4,128 (c_proj 128 x 32 + 32) = 12,704, two of them; ln_f 64: 26,336;
    # a learned position table adds 64 x 32 = 2,048 to the total only; linear attention's phi 32 x 32 + 32 per layer
    assert GPT(small()).describe() == {'params': 26336, 'params_total': 26336 + 2048}
    assert GPT(small(attention='linear', position='rope')).describe() == {
        'params': 26336 + 2 * 1056, 'params_total': 26336 + 2 * 1056, 'decays': [0.939413, 0.996101]}  # exp(-1/16), exp(-1/256)


def test_a_config_takes_what_it_needs_from_the_data():
    """vocab_size from the dataset; the Fourier head's bins from its ordered bins (refused for other tokens)."""
    cfg = small(vocab_size=0, head='fourier', fourier_freqs=4, fourier_start=2)
    fitted = cfg.for_data(256, range(0, 256))
    assert fitted.vocab_size == 256 and fitted.fourier_bins == 254 and cfg.fourier_bins == 0  # a new config
    assert small(vocab_size=0).for_data(27, None).vocab_size == 27  # a linear head takes nothing more
    with pytest.raises(ValueError, match='ordered bins of one quantity'):
        cfg.for_data(27, None)
    with pytest.raises(ValueError, match='leave the dataset.s ordered bins'):
        small(vocab_size=0, head='fourier', fourier_freqs=4, fourier_bins=20, fourier_start=250).for_data(300, range(0, 256))
    with pytest.raises(ValueError, match="needs its dataset's vocabulary"):
        GPT(small(vocab_size=0))

"""
The GPT of this project, with the WaveletGPT operation as one switch (config.wavelet).

Read top to bottom: the config (every model option, and its allowed values), the wavelet
operation (the paper), the nanoGPT-shaped blocks that call it (softmax attention, or SUPRA's
linear attention, whose arithmetic is in linear_attention.py), the Fourier output head, then the
GPT. With the defaults this is a plain GPT-2 style decoder. Sampling lives in generate.py; here
each module only keeps what a later call needs (a Cache), so that a new token costs one position.

WaveletGPT (Verma, arXiv 2409.12924): after every decoder block, half of the residual stream's
coordinates are replaced by causal moving averages over the past k tokens, k growing in dyadic
levels across coordinates (2, 4, ..., block_size). Those are Haar approximation coefficients
computed causally and without downsampling, so every layer sees the sequence at many time scales.
'haar' adds no parameters; 'learnable' turns each box into a trainable kernel initialised to it.
'ema' is a control from the paper's reviews: exponential moving averages instead of boxes, with
the same spans.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn import functional as F

from linear_attention import decay_rates, decayed_attention, recurrent_step


@dataclass
class GPTConfig:
    block_size: int = 512
    vocab_size: int = 27          # set from the dataset
    n_layer: int = 10
    n_head: int = 8
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True             # biases in Linear and LayerNorm, as GPT-2
    wavelet: str = 'none'         # 'none' | 'haar' | 'learnable' | 'ema' (an ablation control)
    wavelet_frac: float = 0.5     # fraction of coordinates that are averaged (the first ones)
    wavelet_levels: int = 0       # dyadic levels; 0 means log2(block_size): windows 2 .. block_size
    wavelet_pad: str = 'zero'     # 'zero': divide by k (zeros before the start) | 'valid': by min(t+1, k)
    wavelet_max_kernel: int = 0   # learnable only: at most this many free taps per kernel (0: k taps)
    wavelet_last: bool = True     # also apply it after the last block
    wavelet_window: int = 0       # ablation: one window for every averaged coordinate (0: the ladder)
    position: str = 'learned'     # 'learned': a table of block_size positions | 'rope': rotary, in the attention
    attention: str = 'softmax'    # 'softmax' | 'linear': SUPRA's decayed linear attention, an RNN when decoding
    qk_norm: bool = False         # linear attention: normalise queries and keys after the feature map
    head: str = 'linear'          # 'linear' | 'fourier': a smooth distribution over ordered bins (FourierHead)
    fourier_freqs: int = 64       # N, the Fourier head's frequencies
    fourier_reg: float = 1e-6     # weight of its smoothness regulariser, added to the training loss
    fourier_start: int = 0        # its bins are token ids fourier_start .. fourier_start+fourier_bins-1;
    fourier_bins: int = 0         # 0: all tokens (train.py takes the dataset's ordered bins); others get a linear head

    def __post_init__(self):
        """The allowed values of every option, checked here and nowhere else: one-line ValueErrors."""
        at_least(self, 1, 'block_size', 'vocab_size', 'n_layer', 'n_head', 'n_embd')
        at_least(self, 0, 'wavelet_levels', 'wavelet_max_kernel', 'wavelet_window', 'fourier_start', 'fourier_bins')
        at_least(self, 1, 'fourier_freqs')
        one_of(self, 'wavelet', 'none', 'haar', 'learnable', 'ema')
        one_of(self, 'wavelet_pad', 'zero', 'valid')
        one_of(self, 'head', 'linear', 'fourier')
        one_of(self, 'position', 'learned', 'rope')
        one_of(self, 'attention', 'softmax', 'linear')
        within(self, 'fourier_reg', 0.0)
        bins = self.fourier_bins or self.vocab_size - self.fourier_start
        if self.head == 'fourier':
            if self.fourier_start + max(bins, 1) > self.vocab_size:
                raise ValueError(f"the Fourier head's bins from fourier_start={self.fourier_start} (fourier_bins="
                                 f"{self.fourier_bins}) do not fit a vocabulary of {self.vocab_size}; set them inside it")
            if bins < 2:
                raise ValueError(f"the Fourier head needs 2 bins or more, and fourier_start={self.fourier_start}, "
                                 f"fourier_bins={self.fourier_bins} give it {bins}; set fourier_bins to 2 or more")
            if self.fourier_freqs >= 2 * bins:  # its tables grow as fourier_freqs * (fourier_freqs + bins)
                raise ValueError(f"fourier_freqs={self.fourier_freqs}: use fewer than twice the Fourier head's {bins} "
                                 f"bins (of a vocabulary of {self.vocab_size}): at every bin centre, frequency "
                                 f"k + 2 * bins takes the values of k")
        within(self, 'dropout', 0.0, 1.0, high_open=True)
        within(self, 'wavelet_frac', 0.0, 1.0, low_open=True)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not a multiple of n_head={self.n_head}")
        if self.position == 'rope' and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"position='rope' needs an even head size; n_embd / n_head = {self.n_embd // self.n_head}")
        if self.wavelet == 'none':
            return
        windows = wavelet_windows(self)
        if not windows:
            raise ValueError(f"wavelet_frac={self.wavelet_frac} of n_embd={self.n_embd} averages no coordinate; "
                             f"raise wavelet_frac")
        if max(windows) > self.block_size:
            raise ValueError(f"a window of {max(windows)} tokens is longer than block_size={self.block_size}; "
                             f"lower wavelet_levels or wavelet_window")
        cap = self.wavelet_max_kernel
        if self.wavelet == 'learnable' and cap and any(k % min(k, cap) for k in windows):
            raise ValueError(f"wavelet_max_kernel={cap} must divide every window k; use a power of two")


def at_least(config, low, *keys):
    for key in keys:
        if not getattr(config, key) >= low:
            raise ValueError(f"{key}={getattr(config, key)!r}: use {low} or more")


def one_of(config, key, *choices):
    if getattr(config, key) not in choices:
        raise ValueError(f"{key}={getattr(config, key)!r}: choose one of {', '.join(map(repr, choices))}")


def within(config, key, low, high=math.inf, low_open=False, high_open=False):
    """low <= value <= high, either end open; NaN and infinities are rejected too."""
    v = getattr(config, key)
    if not (math.isfinite(v) and (low < v if low_open else low <= v) and (v < high if high_open else v <= high)):
        bounds = f"{'>' if low_open else '>='} {low}" + ('' if high == math.inf else f" and {'<' if high_open else '<='} {high}")
        raise ValueError(f"{key}={v!r}: use a finite number {bounds}")


# ----------------------------------------------------------------------------------------------
# The wavelet operation

def wavelet_windows(config):
    """Window k_i of each averaged coordinate i < n_mod: level 1 + floor(L*i/n_mod), k = 2**level."""
    n_mod = round(config.wavelet_frac * config.n_embd)
    levels = config.wavelet_levels or int(math.log2(config.block_size))
    if config.wavelet_window:
        return [config.wavelet_window] * n_mod
    return [2 ** (1 + (levels * i) // n_mod) for i in range(n_mod)]


def causal_moving_average(x, window, valid):
    """
    y[t, i] = sum of x[s, i] for s in (t - k_i, t], divided by k_i, or with valid=True by the
    number of those s >= 0, min(t + 1, k_i). x: (B, T, n) float32, window: (n,) float32 k_i.
    Prefix sums make this O(T) whatever k is: window sum = S[t] - S[t - k]. S gets a zero row in
    front (row t+1 holds S[t]), and start[t, i] = max(t + 1 - k_i, 0) is the row of S[t - k_i]
    in it: zero before the first token.
    """
    B, T, n = x.shape
    t = torch.arange(1, T + 1, device=x.device)[:, None]
    start = (t - window.long()).clamp(min=0)
    count = torch.minimum(t.float(), window) if valid else window
    S = F.pad(x.cumsum(1), (0, 0, 1, 0))
    return (S[:, 1:] - S.gather(1, start.expand(B, T, n))) / count


def causal_convolution(x, kernel):
    """
    y[t, i] = sum over lag of kernel[lag, i] * x[t - lag, i], zero before the start.
    x: (B, T, n), kernel: (L, n). By FFT: O(T log T) whatever the kernel length (on CPU about 3x
    faster than a grouped conv1d with 512-tap kernels). Padding to 2T makes the circular
    convolution of the FFT a linear one.
    """
    T, n = x.size(1), 2 * x.size(1)
    kernel = kernel[:T]  # a longer kernel would wrap around
    y = torch.fft.irfft(torch.fft.rfft(x, n=n, dim=1) * torch.fft.rfft(kernel, n=n, dim=0), n=n, dim=1)
    return y[:, :T]


class WaveletCache:
    """
    What the wavelet keeps between decoding calls: the last `span` inputs of the averaged
    coordinates (zeros before the first token), and its kernel reversed, so that a new token is
    one dot product per coordinate. The inputs sit in a ring of 2 * span rows, each written twice
    (rows r and r + span), so that the last span of them are always one contiguous slice.
    Memory and cost per token stay flat however long the sequence.
    """

    def __init__(self, span):
        self.span, self.inputs, self.kernel = span, None, None

    def push(self, xm, pos):
        """Keep xm (B, T, n), the inputs at positions pos .. pos+T-1; position 0 starts afresh."""
        B, T, n = xm.shape
        if self.inputs is None or self.inputs.shape[0] != B:
            self.inputs = torch.zeros(B, 2 * self.span, n, device=xm.device)  # float32, whatever xm is
        elif pos == 0:
            self.inputs.zero_()
        keep = min(T, self.span)
        first = (pos + T - keep) % self.span
        head = min(keep, self.span - first)  # rows first .. span-1; the rest wraps around to row 0
        self.write(first, xm[:, T - keep:T - keep + head])
        if head < keep:
            self.write(0, xm[:, T - keep + head:])

    def write(self, row, part):
        for r in (row, row + self.span):
            self.inputs[:, r:r + part.size(1)] = part

    def last(self, pos):
        """The inputs at positions pos-span+1 .. pos, oldest first (pos: the last one pushed)."""
        r = (pos + 1) % self.span
        return self.inputs[:, r:r + self.span]


class Wavelet(nn.Module):
    """Overwrites the first n_mod coordinates of the residual stream with causal averages."""

    def __init__(self, config):
        super().__init__()
        windows = wavelet_windows(config)
        self.n_mod, self.mode, self.valid = len(windows), config.wavelet, config.wavelet_pad == 'valid'
        self.groups = []  # (start, end, k): runs of coordinates with the same window
        for i, k in enumerate(windows):
            if self.groups and self.groups[-1][2] == k:
                self.groups[-1][1] = i + 1
            else:
                self.groups.append([i, i + 1, k])
        # how many past inputs the output reads: the largest window (an EMA: all of block_size)
        self.span = config.block_size if self.mode == 'ema' else max(windows)
        # buffers, not parameters, and not saved: 'haar' and 'none' share one state_dict
        window = torch.tensor(windows, dtype=torch.float32)
        self.register_buffer('window', window, persistent=False)
        t = torch.arange(1, self.span + 1, dtype=torch.float32)[:, None]
        box_scale = window / torch.minimum(t, window) if self.valid else torch.ones(self.span, self.n_mod)
        if self.mode == 'learnable':
            # A causal kernel per coordinate, initialised to the box 1/k, so that at step 0 this is
            # exactly 'haar'. With a cap of c taps, each tap weighs k/c consecutive tokens
            # (a piecewise-constant kernel): still the box at init, c parameters instead of k.
            self.taps = [min(k, config.wavelet_max_kernel or k) for _, _, k in self.groups]
            self.kernels = nn.ParameterList(
                nn.Parameter(torch.full((b - a, c), 1.0 / k)) for (a, b, k), c in zip(self.groups, self.taps))
        elif self.mode == 'ema':
            # weights alpha * (1 - alpha)^lag with alpha = 2 / (k + 1): an EMA whose span is k
            alpha = 2.0 / (window + 1.0)
            ema = alpha * (1.0 - alpha) ** (t - 1)
            self.register_buffer('ema_kernel', ema, persistent=False)
            box_scale = 1.0 / ema.cumsum(0) if self.valid else torch.ones_like(ema)
        # 'valid' padding as a factor per position: kernel sum * scale[t] divides by the tokens that
        # exist (the same from position span - 1 on); all ones for 'zero' padding
        self.register_buffer('scale', box_scale.contiguous(), persistent=False)

    def forward(self, x, pos=0, cache=None):
        """x: (B, T, C) at positions pos .. pos+T-1. Without a cache this is a whole sequence from
        position 0. With one, position 0 starts it afresh and every later call brings one token."""
        if pos == 0:
            # float32 even under autocast: prefix sums of bf16 values lose their low bits
            with torch.autocast(device_type=x.device.type, enabled=False):
                xm = x[..., :self.n_mod].float()
                y = self.average(xm)
            if cache is not None:
                cache.push(xm, 0)
                cache.kernel = self.kernel().flip(0)  # row span-1-lag
        else:  # one new token, from the inputs kept: one float32 dot product per coordinate
            assert x.size(1) == 1, "after position 0, decode one token per call"
            cache.push(x[..., :self.n_mod], pos)
            y = (cache.last(pos) * cache.kernel).sum(1, keepdim=True)
            if self.valid:
                y = y * self.scale[min(pos, self.span - 1)]
        return torch.cat([y.to(x.dtype), x[..., self.n_mod:]], dim=-1)

    def average(self, xm):
        """The averages of a whole sequence xm (B, T, n_mod) from position 0."""
        if self.mode == 'haar':
            return causal_moving_average(xm, self.window, self.valid)
        T = xm.size(1)
        scale = self.scale[torch.arange(T, device=xm.device).clamp(max=self.span - 1)]
        return causal_convolution(xm, self.kernel()) * scale

    def kernel(self):
        """Every coordinate's weights as one (span, n_mod) tensor: row lag holds the weight of the
        token lag steps back (row 0: the current token). A capped kernel's c taps are stretched
        over k lags, k/c each."""
        if self.mode == 'ema':
            return self.ema_kernel
        lag = torch.arange(self.span, device=self.window.device)[:, None]
        if self.mode == 'haar':
            return (lag < self.window) / self.window
        h = [F.pad(w.repeat_interleave(k // c, dim=1), (0, self.span - k))
             for (_, _, k), c, w in zip(self.groups, self.taps, self.kernels)]
        return torch.cat(h, 0).t()


# ----------------------------------------------------------------------------------------------
# The transformer (nanoGPT's module names, so checkpoints and tools stay familiar)

def rotate(x, pos):
    """Rotary position embedding (Su et al. 2021) of x (B, H, T, D) at positions pos .. pos+T-1: the
    pair (x_i, x_{i+D/2}) turns by the angle p * 10000^(-2i/D), so that q . k depends on positions only
    through their difference. Any position works: nothing limits it to block_size."""
    half = x.size(-1) // 2
    freq = 10000.0 ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angle = torch.arange(pos, pos + x.size(-2), device=x.device, dtype=torch.float32)[:, None] * freq
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).to(x.dtype)


class KVCache:
    """The attention's keys and values of the positions encoded so far, in buffers of block_size
    positions allocated at first use and reused when the context is encoded again."""

    def __init__(self, size):
        self.size, self.k, self.v = size, None, None

    def update(self, k, v, pos):
        """Keep k, v (B, n_head, T, head_dim) at positions pos .. pos+T-1; all of them so far."""
        B, H, T, D = k.shape
        assert pos == 0 or T == 1, "after position 0, decode one token per call"
        if self.k is None or self.k.shape[0] != B or self.k.dtype != k.dtype:
            self.k, self.v = k.new_empty(B, H, self.size, D), v.new_empty(B, H, self.size, D)
        self.k[:, :, pos:pos + T] = k
        self.v[:, :, pos:pos + T] = v
        return self.k[:, :, :pos + T], self.v[:, :, :pos + T]


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.block_size = config.block_size
        self.rope = config.position == 'rope'

    def forward(self, x, pos=0, cache=None):
        B, T, C = x.size()
        # (B, n_head, T, head_dim) each; the same strides as nanoGPT's split and transposes, fewer calls
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4).unbind(0)
        if self.rope:
            q, k = rotate(q, pos), rotate(k, pos)
        if cache is not None:  # later tokens attend to these keys and values too
            k, v = cache.update(k, v, pos)
        # one new token attends to every key so far: no mask needed
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=T > 1)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def new_cache(self):
        return KVCache(self.block_size)


class LinearCache:
    """The linear attention's state between decoding calls: (B, n_head, head_dim, head_dim) in float32."""
    state = None


class LinearAttention(nn.Module):
    """
    SUPRA's linear attention (Mercat et al. 2024), a drop-in for CausalSelfAttention that keeps its
    c_attn and c_proj (so a softmax checkpoint loads into it unchanged) and adds one square layer phi,
    shared by queries and keys of all heads: q~ = RoPE(ReLU(phi(q))), k~ = RoPE(ReLU(phi(k))) / sqrt(D),
    optionally normalised before RoPE (qk_norm). Then o_i = sum_{j<=i} gamma_h^(i-j) (q~_i . k~_j) v_j
    with a fixed decay per head (linear_attention.py), no softmax and no denominator, and a GroupNorm over
    heads (no affine parameters) before c_proj. In float32, also under autocast.
    """

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.phi = nn.Linear(config.n_embd, config.n_embd)  # the one new layer of a conversion
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.qk_norm, self.rope = config.n_head, config.qk_norm, config.position == 'rope'
        self.chunk = config.block_size  # longer sequences go chunk by chunk, the state carried
        self.register_buffer('gamma', decay_rates(config.n_head), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        """[ours] phi starts as the identity, so a converted model starts from ReLU(q) . ReLU(k): the
        pretrained queries and keys, cut to the non-negative features a linear attention needs."""
        with torch.no_grad():
            self.phi.weight.copy_(torch.eye(self.phi.in_features))
            self.phi.bias.zero_()

    def forward(self, x, pos=0, cache=None):
        B, T, C = x.size()
        H, D = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, k = (F.relu(self.phi(t.float())).view(B, T, H, D).transpose(1, 2) for t in (q, k))
            v = v.float().view(B, T, H, D).transpose(1, 2)
            if self.qk_norm:
                q, k = F.layer_norm(q, (D,)), F.layer_norm(k, (D,))
            if self.rope:
                q, k = rotate(q, pos), rotate(k, pos)
            k = k / math.sqrt(D)
            if pos > 0:  # decoding one token from the state of the positions before
                assert T == 1, "after position 0, decode one token per call"
                o, cache.state = recurrent_step(q, k, v, self.gamma, cache.state)
            else:  # a whole sequence: parallel, or chunk by chunk past block_size
                o, state = decayed_attention(q, k, v, self.gamma, chunk=self.chunk, keep_state=cache is not None)
                if cache is not None:
                    cache.state = state
            o = F.group_norm(o.transpose(1, 2).reshape(B * T, C), H).view(B, T, C)
        return self.resid_dropout(self.c_proj(o.to(x.dtype)))

    def new_cache(self):
        return LinearCache()


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class LayerCache(NamedTuple):
    attn: KVCache | LinearCache
    wavelet: WaveletCache = None


class Block(nn.Module):

    def __init__(self, config, wavelet):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = LinearAttention(config) if config.attention == 'linear' else CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.wavelet = Wavelet(config) if wavelet else None

    def forward(self, x, pos=0, cache=None):
        x = x + self.attn(self.ln_1(x), pos, cache and cache.attn)
        x = x + self.mlp(self.ln_2(x))
        if self.wavelet is not None:  # the paper: the block's output is overwritten, later blocks see it
            x = self.wavelet(x, pos, cache and cache.wavelet)
        return x

    def new_cache(self):
        return LayerCache(self.attn.new_cache(), WaveletCache(self.wavelet.span) if self.wavelet else None)


# ----------------------------------------------------------------------------------------------
# The Fourier head (Gillman et al., arXiv 2410.22269): for tokens that are ordered bins of one
# continuous quantity, such as 8-bit audio levels

class FourierHead(nn.Module):
    """
    The output layer as a smooth density over [-1, 1] instead of m free logits. A linear layer gives
    N+1 complex coefficients a_0..a_N; S(x) = sum_j a_j e^{i pi j x}, and the density
        p(x) = |S(x)|^2 / (2 sum_j |a_j|^2) = 1/2 + Re sum_k (c_k / c_0) e^{i pi k x},
        c_k = sum_j a_{j+k} conj(a_j) (the autocorrelation),
    is >= 0 and integrates to 1 by construction. At the m bin centres x_b = -1 + (2b+1)/m it is
    normalised over the bins into a PMF q, and the logits are log(q + 1e-5), as in the paper.
    Computed in float32 with real matmuls against a cos/sin table (never a complex tensor).
    Tokens outside the bins (none for audio) get ordinary logits from a small linear layer, which
    also gives the bins' share of the probability.
    """

    def __init__(self, config):
        super().__init__()
        N, V = config.fourier_freqs, config.vocab_size
        self.start, self.bins = config.fourier_start, config.fourier_bins or V - config.fourier_start
        self.reg = config.fourier_reg
        self.coefficients = nn.Linear(config.n_embd, 2 * (N + 1))  # real parts of a_0..a_N, then imaginary
        self.outside = nn.Linear(config.n_embd, V - self.bins + 1) if self.bins < V else None  # last: the bins' gate
        # S at the bin centres: [Re S, Im S] = [Re a, Im a] @ [[cos, sin], [-sin, cos]] (pi j x_b)
        centres = -1 + (2 * torch.arange(self.bins, dtype=torch.float64) + 1) / self.bins
        self.register_buffer('at_bins', self.table(centres, N), persistent=False)
        # the regulariser samples dS/dx on a grid fine enough to integrate |d|S|^2/dx|^2 exactly (Parseval)
        grid = -1 + 2 * torch.arange(2 * N + 2, dtype=torch.float64) / (2 * N + 2)
        self.register_buffer('on_grid', torch.cat([self.table(grid, N), self.table(grid, N, derivative=True)], 1),
                             persistent=False)
        self.reset_parameters()

    @staticmethod
    def table(x, N, derivative=False):
        """(2(N+1), 2 len(x)) float32: [Re a, Im a] @ table = [Re S(x), Im S(x)], or of dS/dx."""
        angle = torch.pi * torch.arange(N + 1, dtype=torch.float64)[:, None] * x
        cos, sin = angle.cos(), angle.sin()
        if derivative:  # d/dx e^{i pi j x} = i pi j e^{i pi j x}
            j = torch.pi * torch.arange(N + 1, dtype=torch.float64)[:, None]
            cos, sin = -j * sin, j * cos
        return torch.cat([torch.cat([cos, sin], 1), torch.cat([-sin, cos], 1)], 0).float()

    def reset_parameters(self):
        """The official head's init: the coefficient layer's default init divided by 100. The PMF does not
        change with the scale of the coefficients, so this sets the size of the first gradients."""
        self.coefficients.reset_parameters()
        with torch.no_grad():
            self.coefficients.weight /= 100
            self.coefficients.bias /= 100

    def forward(self, x):
        with torch.autocast(device_type=x.device.type, enabled=False):
            S = self.coefficients(x.float()) @ self.at_bins  # [Re S(x_b), Im S(x_b)]
            power = S.square().unflatten(-1, (2, self.bins)).sum(-2)  # |S(x_b)|^2: the density up to 2 sum |a_j|^2
            logits = torch.log(power / power.sum(-1, keepdim=True) + 1e-5)
            if self.outside is None:
                return logits
            other = self.outside(x.float())
            return torch.cat([other[..., :self.start], logits + other[..., -1:], other[..., self.start:-1]], -1)

    def regulariser(self, x):
        """reg * 4 pi^2 * mean over positions of sum_k k^2 |c_k|^2, the paper's smoothness penalty on the
        unnormalised autocorrelation. By Parseval, sum_k k^2 |c_k|^2 = (1/(2 pi^2 M)) sum_m |P'(x_m)|^2 for
        P = |S|^2 sampled at M = 2N+2 points of one period; P' = 2 (Re S Re S' + Im S Im S')."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            re, im, dre, dim = (self.coefficients(x.float()) @ self.on_grid).chunk(4, dim=-1)
            slope = 2 * (re * dre + im * dim)
            reg = self.reg * 2 * slope.pow(2).mean(-1).mean()
        self.last_regulariser = reg.detach()  # for the log: far below a float32 loss's last digit
        return reg


class Cache:
    """What decoding keeps between calls of GPT.forward (see generate.py): the first `pos` tokens
    of the context are encoded, and each block keeps its own state (a LayerCache)."""

    def __init__(self, model):
        self.pos = 0
        self.layers = [block.new_cache() for block in model.transformer.h]


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        use = [config.wavelet != 'none'] * config.n_layer
        if not config.wavelet_last:
            use[-1] = False
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            **(dict(wpe=nn.Embedding(config.block_size, config.n_embd)) if config.position == 'learned' else {}),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, w) for w in use]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        if config.head == 'fourier':
            self.lm_head = FourierHead(config)  # no weight tying: its weights are coefficients, not tokens
        else:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)  # touches Linear and Embedding only: wavelet kernels keep their box
        for name, p in self.named_parameters():  # GPT-2: scaled init of the residual projections
            if name.endswith('c_proj.weight'):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        elif isinstance(module, (FourierHead, LinearAttention)):  # apply() reaches these after their own
            module.reset_parameters()                              # Linears: they keep their intended init

    def get_num_params(self, non_embedding=True):
        """Parameter count; the position embedding is left out by default, as in nanoGPT."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding and 'wpe' in self.transformer else n

    @property
    def context_limit(self):
        """The longest context, or None: a learned position table ends at block_size, and so does a KV
        cache; linear attention with rotary positions carries a fixed-size state instead."""
        return None if self.config.attention == 'linear' and self.config.position == 'rope' else self.config.block_size

    def converted_tensors(self):
        """What a softmax checkpoint lacks when converted to linear attention: the feature maps phi."""
        return {name for name, _ in self.named_parameters() if '.attn.phi.' in name}

    def forward(self, idx, targets=None, cache=None):
        """Logits (B, T, V) and the loss, or with no targets the last position's logits (B, 1, V).
        With a cache, idx (B, T) holds the tokens at positions cache.pos .. cache.pos+T-1."""
        B, T = idx.size()
        pos = cache.pos if cache is not None else 0
        limit = self.context_limit
        assert limit is None or pos + T <= limit, f"sequence of {pos + T} > block_size {limit}"
        x = self.transformer.wte(idx)
        if 'wpe' in self.transformer:
            x = x + self.transformer.wpe(torch.arange(pos, pos + T, device=idx.device))
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, pos, cache.layers[i] if cache is not None else None)
        if cache is not None:
            cache.pos = pos + T
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None  # only the last position is needed to sample
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-1)
        if self.config.head == 'fourier':
            loss = loss + self.lm_head.regulariser(x)  # the training objective (the paper's code never adds it)
        return logits, loss

    def new_cache(self):
        return Cache(self)

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # decay matrices and embeddings; not biases, LayerNorms, or wavelet kernels (decay would
        # pull the averages towards zero instead of towards the box they start as)
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (decay if p.dim() >= 2 and '.wavelet.' not in name else no_decay).append(p)
        groups = [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=device_type == 'cuda')

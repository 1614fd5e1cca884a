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
import functools
import itertools
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn import functional as F

from checks import at_least, one_of, within
from linear_attention import decay_rates, decayed_attention, recurrent_step


@dataclass
class GPTConfig:
    block_size: int = 512         # the context, in tokens
    vocab_size: int = 0           # the dataset's (0 until it is read)
    n_layer: int = 10             # decoder blocks
    n_head: int = 8               # attention heads
    n_embd: int = 128             # the width of the residual stream (the MLP: 4x)
    dropout: float = 0.0          # after attention, MLP and embeddings
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
    fourier_bins: int = 0         # 0: the dataset's ordered bins from fourier_start on; other tokens get a linear head

    def __post_init__(self):
        """The allowed values of every option, each checked beside the module that implements it:
        one-line ValueErrors. vocab_size 0 (a dataset not read yet) skips the checks that need it."""
        at_least(self, 1, 'block_size', 'n_layer', 'n_head', 'n_embd')
        at_least(self, 0, 'vocab_size')
        within(self, 'dropout', 0.0, 1.0, high_open=True)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not a multiple of n_head={self.n_head}")
        Wavelet.check(self)
        check_attention(self)
        FourierHead.check(self)

    def for_data(self, vocab_size, ordered):
        """These settings on a dataset with this vocabulary, whose tokens `ordered` (a range of ids, or None)
        are ordered bins of one quantity: with what an option takes from the data (the Fourier head's bins)."""
        return FourierHead.for_data(self, vocab_size, ordered)


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
    in it: zero before the first token. The plain form: MovingAverage computes the same, faster.
    """
    B, T, n = x.shape
    t = torch.arange(1, T + 1, device=x.device)[:, None]
    start = (t - window.long()).clamp(min=0)
    count = torch.minimum(t.float(), window) if valid else window
    S = F.pad(x.cumsum(1), (0, 0, 1, 0))
    return (S[:, 1:] - S.gather(1, start.expand(B, T, n))) / count


def sum_dtype(dtype):
    """What the fast forms sum in: float64 for float64 (the reference tests), float32 for every other dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class HaarIndices(NamedTuple):
    """What MovingAverage reads for T positions of n coordinates with windows k (Wavelet.haar_indices)."""
    back: torch.Tensor           # (n, T): max(t - k, 0), where the window's S[t - k] is
    inside: torch.Tensor         # (n, T): 1 where t >= k (that S[t - k] exists), else 0
    ends: torch.Tensor           # (n, 2T): the backward's, last[s] = min(s + k - 1, T - 1), then max(s - 1, 0)
    after: torch.Tensor          # (1, T): 1 where s >= 1 (that P[s - 1] exists), else 0
    pre: torch.Tensor | None     # (n, 1): 1/k, for 'zero' padding
    post: torch.Tensor | None    # (n, T): 1/min(t + 1, k), for 'valid' padding


class MovingAverage(torch.autograd.Function):
    """
    The faster form of the haar step (the plain one: causal_moving_average and a cat): x (B, T, C) ->
    x with its first n coordinates replaced by their causal moving averages, forward and backward in
    five kernels each on a GPU (six forward with 'valid' padding), and no wait for the host.
    - A GPU scans the innermost dimension in parallel, an outer one serially (one thread walks all T
      positions of a column), so the n coordinates are copied once into (B, n, T), divided by k on the
      way ('valid': by the count, after), and scanned there, in place.
    - With S the prefix sums, a window sum is S[t] - S[t - k]: one gather of S at back[t] = max(t - k, 0)
      and one multiply-add that takes it off where it exists (inside[t] = 1 for t >= k, else 0), written
      straight into the new stream.
    - The gradient of a causal window sum is the same sum looking ahead, with g = dL/dy / count:
      dL/dx[s] = sum of g[t] for t in [s, last[s]] = P[last[s]] - P[s - 1], last[s] = min(s + k - 1, T - 1),
      P the prefix sums of g: one scan, one gather of both ends (`ends`), and the multiply-add (after[s]
      = 1 for s >= 1). (Autograd's backward of a gather is a scatter-add in which up to k rows add into
      row 0 at once: on an H200 'haar' then cost a third of a training step.)
    - The other coordinates are copied into the new stream: no cat, whose backward is two zero-filled
      copies of the whole stream and an add. (Writing into x, or into the incoming gradient, would save
      that copy each way; autograd forbids the second, and the first would overwrite the caller's tensor.)
    The indices and factors are a HaarIndices (Wavelet.indices). Sums in float32 (or float64) whatever x
    is: prefix sums of bf16 values lose their low bits.
    """

    @staticmethod
    def forward(ctx, x, back, inside, ends, after, pre, post):
        B, T, _ = x.shape
        n = back.size(0)
        S = x.new_empty(B, n, T, dtype=sum_dtype(x.dtype))
        if pre is None:
            S.copy_(x[..., :n].mT)
        else:
            torch.mul(x[..., :n].mT, pre, out=S)
        S.cumsum_(-1)
        ctx.save_for_backward(ends, after, pre if post is None else post)
        return replace_first(x, S, S.gather(-1, back.expand(B, -1, -1)), inside, post)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        ends, after, factor = ctx.saved_tensors
        B, T, _ = grad.shape
        n = ends.size(0)
        P = grad.new_empty(B, n, T, dtype=sum_dtype(grad.dtype))
        torch.mul(grad[..., :n].mT, factor, out=P)
        P.cumsum_(-1)
        both = P.gather(-1, ends.expand(B, -1, -1))  # P[last[s]], then P[s - 1]
        return replace_first(grad, both[..., :T], both[..., T:], after), None, None, None, None, None, None


def replace_first(x, a, b=None, inside=None, post=None):
    """A new x (B, T, C) whose first n coordinates are (a - b * inside) * post, a and b (B, n, T), inside
    and post broadcast to it (b and post optional; a may be overwritten): written straight into the new
    tensor, one call for them (two with both b and post) and one for the others. Compiled, a cat: dynamo
    cannot trace a write into a strided view, and inductor fuses the cat into one kernel."""
    n = a.size(1)
    if torch.compiler.is_compiling():
        y = a if b is None else a - b * inside
        return torch.cat([(y if post is None else y * post).mT.to(x.dtype), x[..., n:]], -1)
    out = torch.empty_like(x)
    out[..., n:] = x[..., n:]
    first = out[..., :n].mT
    if b is not None and post is not None:
        a, b = a.addcmul_(b, inside, value=-1), None
    if b is not None:
        torch.addcmul(a, b, inside, value=-1, out=first)
    elif post is not None:
        torch.mul(a, post, out=first)
    else:
        first.copy_(a)
    return out


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


def toeplitz_convolution(x, kernel):
    """
    causal_convolution as one matmul per coordinate, y[:, i] = M_i x[:, i], with M_i the T x T
    lower-triangular Toeplitz matrix M_i[t, s] = kernel[t - s, i]. O(T^2) work instead of O(T log T),
    but real matmuls: on a GPU they run on the tensor cores (under autocast: bfloat16 products,
    float32 sums, as every other matmul of the model) and torch.compile fuses around them; it cannot
    compile the FFT's complex numbers. unfold reads M off one padded row per coordinate, with its
    columns in reverse order, so x goes in reversed in time.
    """
    B, T, n = x.shape
    lags = kernel[:T].t()                                   # (n, <= T): lag 0, 1, ... of each coordinate
    diagonals = F.pad(lags, (T - 1, T - lags.size(1)))      # (n, 2T - 1): T - 1 zeros, then the lags
    M = diagonals.unfold(1, T, 1)                           # M[i, t, m] = kernel[t + m - (T - 1), i]
    y = torch.bmm(M, x.flip(1).permute(2, 1, 0))            # with s = T - 1 - m: kernel[t - s] x[s]
    return y.permute(2, 1, 0)


@functools.lru_cache(maxsize=8)
def toeplitz_index(T, span, device):
    """(T * T,): where entry (t, s) of a T x T Toeplitz matrix, M[t, s] = kernel[t - s], reads a row of span
    lags and a zero after them (for t - s outside 0 .. span - 1). Made once per (T, span, device) and
    shared by every layer: not a buffer, which every layer would hold and DDP would send."""
    t = torch.arange(T, device=device)
    lag = t[:, None] - t
    return torch.where((lag >= 0) & (lag < span), lag, span).flatten()


class ToeplitzConvolution(torch.autograd.Function):
    """
    The faster form of the learnable step on a GPU (the plain one: toeplitz_convolution and a cat):
    x (B, T, C) -> x with its first n coordinates replaced by their causal convolutions with the kernels
    `rows` (n, span + 1: each coordinate's weights by lag, a zero last), times post (n, T, 1) for 'valid'
    padding; products in `dtype` (under autocast bf16, with float32 sums, as every matmul of the model).
    - M (n, T, T) is built once, in dtype, by one gather from the rows (index: toeplitz_index), and x is
      laid out once as (n, T, B) for the batched matmul. (Autograd would cast a float32 M at every call.)
    - The kernels' gradient, lag of coordinate i, is the sum of diagonal lag of G = x g^T (n, T, T). G is
      written into rows `span` entries longer, zeros after, so that every diagonal becomes a row of a
      strided view: one sum, accumulated in float32, straight into the rows' shape (the zero's own entry
      gets a number too, which is dropped: the zero is no parameter). (Autograd casts G to float32, 4
      bytes an entry, and adds it up through an unfold's backward.)
    - The output and the input's gradient are written straight into new streams: no cat.
    """

    @staticmethod
    def forward(ctx, x, rows, index, post, dtype):
        B, T, _ = x.shape
        n = rows.size(0)
        M = rows.to(dtype).index_select(1, index).view(n, T, T)  # M[i, t, s] = kernel[t - s, i]
        xs = x.new_empty(n, T, B, dtype=dtype)
        xs.copy_(x[..., :n].permute(2, 1, 0))
        ctx.save_for_backward(M, xs, post)
        ctx.span = rows.size(1) - 1
        return replace_first(x, torch.bmm(M, xs).permute(2, 0, 1), post=None if post is None else post.permute(2, 0, 1))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        M, xs, post = ctx.saved_tensors
        n, T, B = xs.shape
        gs = torch.empty_like(xs)  # dL/dy (times post) as (n, T, B)
        if post is None:
            gs.copy_(grad[..., :n].permute(2, 1, 0))
        else:
            torch.mul(grad[..., :n].permute(2, 1, 0), post, out=gs)
        grad_x = replace_first(grad, torch.bmm(M.mT, gs).permute(2, 0, 1))
        if not ctx.needs_input_grad[1]:
            return grad_x, None, None, None, None
        # G[i, s, t] = x[s] g[t] in the first T entries of a row of W = T + span: diagonal lag (t = s + lag) sits at
        # s (W + 1) + lag, so entry lag of the view below sums it over s (zeros where s + lag is past the sequence)
        span = ctx.span
        W = T + span
        G = xs.new_empty(n, T, W)
        G[..., T:].zero_()
        torch.bmm(xs, gs.mT, out=G[..., :T])
        grad_rows = G.as_strided((n, span + 1, T), (T * W, 1, W + 1)).sum(-1, dtype=sum_dtype(G.dtype))
        return grad_x, grad_rows, None, None, None


TOEPLITZ_MAX_T = 1024  # longer sequences: the (n, T, T) matrices would cost more memory than the FFT saves time
FORMS_OF = None  # None: the forms for the device each op runs on; 'cuda': a GPU's anywhere (bench.py --mode=ops counts them)


def uses_gpu_forms(t):
    """Whether an op on tensor t takes the forms written for a GPU (FORMS_OF can force them on a CPU)."""
    return (FORMS_OF or t.device.type) != 'cpu'


def convolve(x, kernel):
    """The learnable and EMA kernels, in the form that is fastest where it runs: the FFT on a CPU, the
    Toeplitz matmuls on a GPU (up to TOEPLITZ_MAX_T positions). The two agree (tested)."""
    if not uses_gpu_forms(x) or x.size(1) > TOEPLITZ_MAX_T:
        return causal_convolution(x, kernel)
    return toeplitz_convolution(x, kernel)


class WaveletCache:
    """
    What the wavelet keeps between decoding calls: the inputs of the averaged coordinates at the last
    `span` positions, position p in slot p % span of a ring (n, span, B) (zeros where no token was).
    A new token is then one dot product per coordinate between the ring and the kernel turned to the
    ring's order: the Cache turns every layer's kernel at once, a step (Cache.turn), so that a layer
    costs two calls (write the ring, one batched matmul into the stream; for more than one stream, a
    third that copies the result there). Its shapes never change and a step writes in place, so a
    decoding step can be compiled once or captured as a CUDA graph.
    """

    def __init__(self, cache, layer, span):
        self.cache, self.layer, self.span, self.inputs = cache, layer, span, None

    def fill(self, xm, kernel):
        """After a whole sequence xm (B, T, n) from position 0: keep its last span inputs, and the kernel."""
        B, T, n = xm.shape
        if self.inputs is None or self.inputs.shape[2] != B:
            self.inputs = torch.zeros(n, self.span, B, device=xm.device)  # float32, whatever xm is
        else:  # in place: a captured decoding step keeps reading these tensors
            self.inputs.zero_()
        keep = min(T, self.span)
        slots = torch.arange(T - keep, T, device=xm.device) % self.span
        self.inputs.index_copy_(1, slots, xm[:, T - keep:].permute(2, 1, 0).float())
        self.cache.keep_kernel(self.layer, kernel)

    def step(self, xm):
        """The new token's inputs xm (B, 1, n) go into the ring at the Cache's slot, and xm is overwritten
        with the kernel's weighted sum."""
        if self.cache.at is not None:  # the CPU's step (Cache.turn): slot s weighs kernel[(at - s) % span]
            at, span = self.cache.at, self.span
            self.inputs[:, at] = xm[:, 0].t()
            weights = self.cache.doubled[self.layer, :, span - 1 - at:2 * span - 1 - at]
            xm[:, 0] = (self.inputs * weights[..., None]).sum(1).t()
            return
        slot, weights = self.cache.slot, self.cache.weights[self.layer]
        with torch.autocast(xm.device.type, enabled=False):  # float32 sums, as in the forward
            if slot.dim() == 0:  # every row at one position: weights (n, 1, span)
                self.inputs.index_copy_(1, slot.view(1), xm.permute(2, 1, 0).float())
                if xm.size(0) == 1 and xm.dtype == self.inputs.dtype:  # one stream: the matmul writes into it,
                    torch.bmm(weights, self.inputs, out=xm.view(-1, 1, 1))  # through a view with a matrix's strides
                else:
                    xm.permute(2, 1, 0).copy_(torch.bmm(weights, self.inputs))
                return
            self.inputs[:, slot, self.cache.rows] = xm[:, 0].t().float()  # a position per row: (n, B, span)
            xm[:, 0] = (weights * self.inputs.transpose(1, 2)).sum(-1).t()

    def restart(self, rows):
        self.inputs[:, :, rows] = 0

    def tensors(self):
        return [self.inputs]


class Wavelet(nn.Module):
    """Overwrites the first n_mod coordinates of the residual stream with causal averages."""

    @staticmethod
    def check(config):
        one_of(config, 'wavelet', 'none', 'haar', 'learnable', 'ema')
        one_of(config, 'wavelet_pad', 'zero', 'valid')
        at_least(config, 0, 'wavelet_levels', 'wavelet_max_kernel', 'wavelet_window')
        within(config, 'wavelet_frac', 0.0, 1.0, low_open=True)
        if config.wavelet == 'none':
            return
        windows = wavelet_windows(config)
        if not windows:
            raise ValueError(f"wavelet_frac={config.wavelet_frac} of n_embd={config.n_embd} averages no coordinate; "
                             f"raise wavelet_frac")
        if max(windows) > config.block_size:
            raise ValueError(f"a window of {max(windows)} tokens is longer than block_size={config.block_size}; "
                             f"lower wavelet_levels or wavelet_window")
        cap = config.wavelet_max_kernel
        if config.wavelet == 'learnable' and cap and any(k % min(k, cap) for k in windows):
            raise ValueError(f"wavelet_max_kernel={cap} must divide every window k; use a power of two")

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
        window = torch.tensor(windows)
        self.register_buffer('window', window, persistent=False)
        if self.mode == 'haar':  # MovingAverage's indices, for block_size positions
            indices = self.haar_indices(config.block_size, torch.get_default_dtype())
            for name, value in zip(HaarIndices._fields, indices):
                self.register_buffer(name, value, persistent=False)
        lag = torch.arange(self.span)[:, None]
        self.register_buffer('fixed_kernel', (lag < window) / window, persistent=False)  # haar: the boxes
        box_scale = window / torch.minimum(lag + 1, window) if self.valid else None
        if self.mode == 'learnable':
            # A causal kernel per coordinate, initialised to the box 1/k, so that at step 0 this is
            # exactly 'haar'. With a cap of c taps, each tap weighs k/c consecutive tokens
            # (a piecewise-constant kernel): still the box at init, c parameters instead of k.
            self.taps = [min(k, config.wavelet_max_kernel or k) for _, _, k in self.groups]
            self.kernels = nn.ParameterList(
                nn.Parameter(torch.full((b - a, c), 1.0 / k)) for (a, b, k), c in zip(self.groups, self.taps))
            # kernel_rows() is one gather from the taps, all kernels' flattened one after the other and a
            # zero last: entry [i, lag] reads coordinate i's tap lag // (k/c) for lag < k, the zero after
            first = [0] + list(itertools.accumulate((b - a) * c for (a, b, _), c in zip(self.groups, self.taps)))
            zero = first[-1]
            layout = [first[g] + (i - a) * c + lag // (k // c) if lag < k else zero
                      for g, ((a, b, k), c) in enumerate(zip(self.groups, self.taps)) for i in range(a, b)
                      for lag in range(self.span + 1)]
            self.register_buffer('layout', torch.tensor(layout).view(self.n_mod, self.span + 1), persistent=False)
            self.register_buffer('zero', torch.zeros(1), persistent=False)
        elif self.mode == 'ema':
            # weights alpha * (1 - alpha)^lag with alpha = 2 / (k + 1): an EMA whose span is k
            alpha = 2.0 / (window + 1.0)
            self.fixed_kernel = alpha * (1.0 - alpha) ** lag
            box_scale = 1.0 / self.fixed_kernel.cumsum(0) if self.valid else None
        # 'valid' padding as a factor per position: kernel sum * scale[t] divides by the tokens that
        # exist (the same from position span - 1 on); 'zero' padding has none
        self.register_buffer('scale', box_scale.contiguous() if self.valid else None, persistent=False)

    def forward(self, x, pos=None, cache=None):
        """x: (B, T, C). pos None: a whole sequence from position 0, which also fills the cache if one
        is given. Otherwise one new token (T = 1) at position pos, a tensor (0-d, or (B,): a position per
        row), from the cache. The same holds for every module's forward below."""
        n = self.n_mod
        if pos is not None:  # decoding, without autograd: the block's own sum x is overwritten in place
            cache.step(x[..., :n])
            if self.valid:
                x[..., :n] *= self.scale.index_select(0, pos.clamp(max=self.span - 1).view(-1))[:, None]
            return x
        if cache is not None:
            cache.fill(x[..., :n], self.kernel())
        T = x.size(1)
        if self.mode == 'haar':
            return MovingAverage.apply(x, *self.indices(T))
        post = self.scale[torch.arange(T, device=x.device).clamp(max=self.span - 1)] if self.valid else None  # (T, n)
        if uses_gpu_forms(x) and T <= TOEPLITZ_MAX_T and not torch.compiler.is_compiling():
            on = x.device.type  # a GPU's eager form: products in autocast's dtype, as the matmuls around it
            dtype = torch.get_autocast_dtype(on) if torch.is_autocast_enabled(on) else x.dtype
            with torch.autocast(on, enabled=False):
                return ToeplitzConvolution.apply(x, self.kernel_rows(), toeplitz_index(T, self.span, x.device),
                                                 None if post is None else post.t()[..., None], dtype)
        y = convolve(x[..., :n].float(), self.kernel())
        return torch.cat([(y if post is None else y * post).to(x.dtype), x[..., n:]], dim=-1)

    def haar_indices(self, T, dtype):
        """MovingAverage's HaarIndices for T positions, the factors in dtype. (A module built with float64 as
        the default dtype has exact ones; .double() casts float32 ones.)"""
        t = torch.arange(T, device=self.window.device)
        k = self.window[:, None]
        last, previous = (t + k - 1).clamp(max=T - 1), (t - 1).clamp(min=0).expand(k.size(0), T)
        count = torch.minimum(t + 1, k) if self.valid else None
        return HaarIndices((t - k).clamp(min=0), (t >= k).to(dtype), torch.cat([last, previous], 1), (t >= 1).to(dtype)[None],
                           None if self.valid else 1.0 / k.to(dtype), 1.0 / count.to(dtype) if self.valid else None)

    def indices(self, T):
        """haar_indices for T positions: the precomputed ones when T is block_size, as in training."""
        if T == self.back.size(1):
            return HaarIndices(self.back, self.inside, self.ends, self.after, self.pre, self.post)
        return self.haar_indices(T, self.inside.dtype)

    def kernel(self):
        """Every coordinate's weights as one (span, n_mod) tensor: row lag holds the weight of the
        token lag steps back (row 0: the current token)."""
        return self.kernel_rows()[:, :-1].t() if self.mode == 'learnable' else self.fixed_kernel

    def kernel_rows(self):
        """The same weights as (n_mod, span + 1), a zero after each coordinate's lags (ToeplitzConvolution's)."""
        if self.mode != 'learnable':
            return F.pad(self.fixed_kernel.t(), (0, 1))
        taps = torch.cat([w.flatten() for w in self.kernels] + [self.zero])
        # index_select, not taps[layout]: its gradient is an index_add, where an index's is a sort on a GPU
        return taps.index_select(0, self.layout.flatten()).view(self.layout.shape)


# ----------------------------------------------------------------------------------------------
# The transformer (nanoGPT's module names, so checkpoints and tools stay familiar)

def rope_frequencies(D, device=None):
    """Rotary position embedding (Su et al. 2021): the pair (x_i, x_{i+D/2}) of a head of size D turns by
    the angle p * 10000^(-2i/D) at position p, so that q . k depends on positions only through their
    difference. Any position works: nothing limits it to block_size. Returns, for each of the D
    coordinates, its angle per position (D,) (both of a pair alike), and the sign of its sin in rotate()
    (-1 for the first half, +1 for the second)."""
    half = D // 2
    freq = 10000.0 ** (-torch.arange(half, device=device, dtype=torch.float32) / half)
    return torch.cat([freq, freq]), torch.cat([-torch.ones(half, device=device), torch.ones(half, device=device)])


def rope_tables(positions, D):
    """What rotate() needs at `positions` (a tensor), each (*positions.shape, D) in float32: the cos of
    the angles, and their signed sin."""
    freq, sign = rope_frequencies(D, positions.device)
    angle = positions[..., None].float() * freq
    return angle.cos(), angle.sin() * sign


class Rotary(nn.Module):
    """An attention layer's RoPE: rope_tables of positions 0 .. block_size - 1 (buffers, not saved)."""

    def __init__(self, config):
        super().__init__()
        cos, sin = rope_tables(torch.arange(config.block_size), config.n_embd // config.n_head)
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)

    def forward(self, T, pos=None, cache=None):
        """(cos, sin) for a whole sequence of T tokens from position 0, or for the decoding step at pos:
        those of `cache`, the model's Cache (a layer's own cache holds it as .cache), which computes them
        once a step for every layer (Cache.turn)."""
        if pos is not None:
            return cache.rope
        if T <= self.cos.size(0):
            return self.cos[:T], self.sin[:T]
        return rope_tables(torch.arange(T, device=self.cos.device), self.cos.size(-1))


def rotate(x, cos, sin):
    """x (..., T, D) turned by rope_tables' cos and signed sin (broadcast to it): x * cos + (x2, x1) * sin
    = (x1 cos - x2 sin, x2 cos + x1 sin), in float32 and back to x's dtype; five calls."""
    half = x.size(-1) // 2
    xf = x.float()
    return torch.addcmul(xf * cos, torch.cat([xf[..., half:], xf[..., :half]], -1), sin).to(x.dtype)


def check_attention(config):
    one_of(config, 'position', 'learned', 'rope')
    one_of(config, 'attention', 'softmax', 'linear')
    if config.position == 'rope' and (config.n_embd // config.n_head) % 2:
        raise ValueError(f"position='rope' needs an even head size; n_embd / n_head = {config.n_embd // config.n_head}")
    if config.qk_norm and config.attention != 'linear':
        raise ValueError("qk_norm=True is for attention='linear' (it normalises the feature map's outputs); drop it")


class KVCache:
    """The attention's keys and values of the positions encoded so far, side by side in one buffer
    (B, block_size, 2, n_head, head_dim) allocated at first use and reused when the context is encoded
    again, so that a decoding step writes both with one call. A step attends to all block_size of them,
    so that its shapes never change (see GPT.decode), through a mask that every layer shares
    (Cache.attention_mask), 0 at the positions a row has and -inf at the others: kept up to date as
    tokens come, it costs one write a step (a mask computed from the position costs several calls,
    and one a layer would cost as many writes)."""

    def __init__(self, size, cache):
        self.size, self.cache, self.kv = size, cache, None

    def fill(self, k, v):
        """Keep k, v (B, n_head, T, head_dim) of a whole sequence from position 0."""
        B, H, T, D = k.shape
        if self.kv is None or self.kv.shape[0] != B or self.kv.dtype != k.dtype:
            # zeros, not empty: masked keys still enter the matmuls, and 0 * NaN would be NaN
            self.kv = k.new_zeros(B, self.size, 2, H, D)
            self.batch = torch.arange(B, device=k.device)
        self.kv[:, :T, 0] = k.transpose(1, 2)
        self.kv[:, :T, 1] = v.transpose(1, 2)
        self.cache.attention_mask(B, T, self.size, k.dtype, k.device)

    def step(self, kv, pos):
        """Keep one token's keys and values kv (B, 1, 2, n_head, head_dim) at position pos (0-d, or one per
        row); the keys, values (B, n_head, block_size, head_dim) and mask to attend to."""
        if pos.dim() == 0:  # every row at one position: the cheaper write
            self.kv.index_copy_(1, pos.view(1), kv)
        else:
            self.kv[self.batch, pos] = kv[:, 0]
        return self.kv[:, :, 0].transpose(1, 2), self.kv[:, :, 1].transpose(1, 2), self.cache.bias

    def tensors(self):
        return [self.kv]


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.block_size = config.block_size
        self.rotary = Rotary(config) if config.position == 'rope' else None

    def forward(self, x, pos=None, cache=None):
        """x: (B, T, C), a whole sequence from position 0 (pos None; it fills the cache if one is given),
        or one token at position pos, a 0-d tensor, attending to the cache."""
        B, T, C = x.size()
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head)
        # (B, n_head, T, head_dim) each; the same strides as nanoGPT's split and transposes, fewer calls
        heads = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = heads.unbind(0)
        if self.rotary is not None:  # queries and keys turned together
            q, k = rotate(heads[:2], *self.rotary(T, pos, cache and cache.cache))
        if pos is None:
            if cache is not None:  # later tokens attend to these keys and values too
                cache.fill(k, v)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        else:  # keys and values side by side as the cache keeps them (rotated keys put back beside the values)
            kv = torch.stack([k, v], 2).transpose(1, 3) if self.rotary is not None else qkv[:, :, 1:]
            k, v, seen = cache.step(kv, pos)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=seen)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def new_cache(self, cache):
        return KVCache(self.block_size, cache)


class LinearCache:
    """The linear attention's state between decoding calls: (B, n_head, head_dim, head_dim) in float32,
    updated in place (a captured decoding step keeps reading the same tensor)."""

    def __init__(self, cache):
        self.cache, self.state = cache, None

    def fill(self, state):
        if self.state is None or self.state.shape != state.shape:
            self.state = state
        else:
            self.state.copy_(state)

    def restart(self, rows):
        self.state[rows] = 0

    def tensors(self):
        return [self.state]


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
        self.n_head, self.qk_norm = config.n_head, config.qk_norm
        self.rotary = Rotary(config) if config.position == 'rope' else None
        self.chunk = config.block_size  # longer sequences go chunk by chunk, the state carried
        self.register_buffer('gamma', decay_rates(config.n_head), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        """[ours] phi starts as the identity, so a converted model starts from ReLU(q) . ReLU(k): the
        pretrained queries and keys, cut to the non-negative features a linear attention needs."""
        with torch.no_grad():
            self.phi.weight.copy_(torch.eye(self.phi.in_features))
            self.phi.bias.zero_()

    def forward(self, x, pos=None, cache=None):
        """As CausalSelfAttention.forward: a whole sequence (pos None), or one token at position pos."""
        B, T, C = x.size()
        H, D = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, k = (F.relu(self.phi(t.float())).view(B, T, H, D).transpose(1, 2) for t in (q, k))
            v = v.float().view(B, T, H, D).transpose(1, 2)
            if self.qk_norm:
                q, k = F.layer_norm(q, (D,)), F.layer_norm(k, (D,))
            if self.rotary is not None:
                cos, sin = self.rotary(T, pos, cache and cache.cache)
                q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            k = k / math.sqrt(D)
            if pos is not None:  # decoding one token from the state of the positions before
                o, state = recurrent_step(q, k, v, self.gamma, cache.state)
                cache.state.copy_(state)
            else:  # a whole sequence: parallel, or chunk by chunk past block_size
                o, state = decayed_attention(q, k, v, self.gamma, chunk=self.chunk, keep_state=cache is not None)
                if cache is not None:
                    cache.fill(state)
            o = F.group_norm(o.transpose(1, 2).reshape(B * T, C), H).view(B, T, C)
        return self.resid_dropout(self.c_proj(o.to(x.dtype)))

    def new_cache(self, cache):
        return LinearCache(cache)


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

    def forward(self, x, pos=None, cache=None):
        x = x + self.attn(self.ln_1(x), pos, cache and cache.attn)
        x = x + self.mlp(self.ln_2(x))
        if self.wavelet is not None:  # the paper: the block's output is overwritten, later blocks see it
            x = self.wavelet(x, pos, cache and cache.wavelet)
        return x

    def new_cache(self, cache, layer):
        """This block's part of the Cache `cache`; layer: its index among the blocks with a wavelet."""
        return LayerCache(self.attn.new_cache(cache), WaveletCache(cache, layer, self.wavelet.span) if self.wavelet else None)


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

    @staticmethod
    def check(config):
        at_least(config, 0, 'fourier_start', 'fourier_bins')
        at_least(config, 1, 'fourier_freqs')
        within(config, 'fourier_reg', 0.0)
        one_of(config, 'head', 'linear', 'fourier')
        bins = config.fourier_bins or config.vocab_size - config.fourier_start
        if config.head != 'fourier' or not config.vocab_size:
            return
        if config.fourier_start + max(bins, 1) > config.vocab_size:
            raise ValueError(f"the Fourier head's bins from fourier_start={config.fourier_start} (fourier_bins="
                             f"{config.fourier_bins}) do not fit a vocabulary of {config.vocab_size}; set them inside it")
        if bins < 2:
            raise ValueError(f"the Fourier head needs 2 bins or more, and fourier_start={config.fourier_start}, "
                             f"fourier_bins={config.fourier_bins} give it {bins}; set fourier_bins to 2 or more")
        if config.fourier_freqs >= 2 * bins:  # its tables grow as fourier_freqs * (fourier_freqs + bins)
            raise ValueError(f"fourier_freqs={config.fourier_freqs}: use fewer than twice the Fourier head's {bins} "
                             f"bins (of a vocabulary of {config.vocab_size}): at every bin centre, frequency "
                             f"k + 2 * bins takes the values of k")

    @staticmethod
    def for_data(config, vocab_size, ordered):
        """config on a dataset of vocab_size tokens whose ordered bins are the ids `ordered` (a range, or
        None), the head's bins with it: with fourier_bins=0, from fourier_start to the last. A ValueError
        if the tokens are not bins, or the settings leave them."""
        if config.head != 'fourier':
            return replace(config, vocab_size=vocab_size)
        if ordered is None:
            raise ValueError("head='fourier' needs tokens that are ordered bins of one quantity (audio levels), "
                             "and this dataset's are not: use head='linear'")
        start, bins = config.fourier_start, config.fourier_bins or max(ordered.stop - config.fourier_start, 0)
        if not (ordered.start <= start and start + bins <= ordered.stop):
            raise ValueError(f"fourier_start={start} and fourier_bins={config.fourier_bins} leave the dataset's "
                             f"ordered bins {ordered.start} .. {ordered.stop - 1}; set them inside, or to 0")
        return replace(config, vocab_size=vocab_size, fourier_bins=bins)

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
            return self.reg * 2 * slope.pow(2).mean(-1).mean()


class Cache:
    """What decoding keeps between calls (see generate.py): each block's state (a LayerCache), and pos,
    the position of the next token of each row (B,), on the model's device. GPT.forward fills it with
    a context, then each GPT.decode adds one token, in place: no tensor of a Cache is ever replaced,
    so a decoding step captured as a CUDA graph stays valid. For the wavelet layers it also keeps
    every kernel, reversed and twice over (L, n, 2 span), and each step turns them to the rings' order
    at once (turn)."""

    def __init__(self, model):
        self.pos, self.together = None, True  # together: every row at one position (the cheaper step)
        self.bias, self.doubled, self.at = None, None, None
        config = model.config  # RoPE's angles, once a step for every attention layer (turn)
        self.head_size = config.n_embd // config.n_head if config.position == 'rope' else None
        spans = [block.wavelet.span for block in model.transformer.h if block.wavelet is not None]
        self.span = spans[0] if spans else 0
        layer = itertools.count()
        self.layers = [block.new_cache(self, next(layer) if block.wavelet is not None else None)
                       for block in model.transformer.h]
        self.n_wavelets = len(spans)

    def filled(self, B, T, device):
        """After a forward of (B, T) tokens from position 0: every row's next token is at T."""
        if self.pos is None or self.pos.size(0) != B:
            self.pos, self.rows = torch.empty(B, dtype=torch.long, device=device), torch.arange(B, device=device)
            self.slots = torch.empty(B, dtype=torch.long, device=device)
            self.reach = torch.arange(self.span - 1, 2 * self.span - 1, device=device)  # span - 1 + r
            self.index = torch.empty(self.span, dtype=torch.long, device=device)
            if self.head_size:
                self.freq, self.sign = rope_frequencies(self.head_size, device)
                self.rope = tuple(torch.empty(B, 1, 1, self.head_size, device=device) for _ in range(2))
        self.pos.fill_(T)
        self.together = True

    def attention_mask(self, B, T, size, dtype, device):
        """The keys' mask that every softmax attention layer reads, (B, 1, 1, size), for a context of T tokens:
        0 at the positions each row has, -inf after. In the dtype of the keys: autocast would cast it at every layer."""
        if self.bias is None or self.bias.shape[0] != B or self.bias.dtype != dtype:
            self.bias = torch.empty(B, 1, 1, size, dtype=dtype, device=device)
        self.bias[..., :T] = 0
        self.bias[..., T:] = -math.inf

    def keep_kernel(self, layer, kernel):
        """Wavelet layer `layer`'s kernel (span, n), kept reversed and twice over, (n, 2 span) in float32, for
        decoding: with the newest input in slot `at` of a ring, slot r weighs kernel[(at - r) % span], which
        is entry span - 1 - at + r of this row, so a step's weights are span consecutive entries (turn)."""
        if self.doubled is None or self.doubled.device != kernel.device or self.doubled.size(1) != kernel.size(1):
            self.doubled = torch.zeros(self.n_wavelets, kernel.size(1), 2 * self.span, device=kernel.device)
            self.turned = torch.zeros(self.n_wavelets, kernel.size(1), self.span, device=kernel.device)
        self.doubled[layer] = kernel.detach().t().flip(-1).repeat(1, 2)  # in place: a captured step reads it

    def turn(self, pos):
        """Before a decoding step at pos (0-d, or one per row), what every layer shares: the attention mask
        opened at pos; RoPE's cos and sin at pos; the ring slot pos % span of the new token, and each wavelet
        kernel in the rings' order, entry r weighing slot r, the input (pos - r) % span steps back (one gather
        for all layers)."""
        if self.bias is not None:
            if pos.dim() == 0:
                self.bias.index_fill_(3, pos.view(1), 0)
            else:
                self.bias[self.rows, 0, 0, pos] = 0
        if self.head_size:  # rope_tables at pos, (B, 1, 1, D) each
            cos, sin = self.rope
            torch.mul((pos if pos.dim() else pos.expand(len(self.rows)))[:, None, None, None], self.freq, out=sin)
            torch.cos(sin, out=cos)
            torch.sin(sin, out=sin).mul_(self.sign)
        if self.doubled is None:
            return
        self.at = None
        if pos.dim() == 0 and not uses_gpu_forms(pos) and not torch.compiler.is_compiling():
            # a CPU, eager: the slot as a Python number, and each layer's weights a slice of its doubled reversed
            # kernel (WaveletCache.step), which nothing has to gather: a gather costs more than the layer's sum here
            self.at = int(pos) % self.span
            return
        self.slot = self.slots[0] if pos.dim() == 0 else self.slots
        torch.remainder(pos, self.span, out=self.slot)
        if pos.dim() == 0:
            torch.sub(self.reach, self.slot, out=self.index)
            torch.index_select(self.doubled, 2, self.index, out=self.turned)
            self.weights = self.turned[:, :, None]  # (L, n, 1, span)
        else:
            self.weights = self.doubled[:, :, self.reach - self.slot[:, None]]  # (L, n, B, span)

    def restart(self, rows):
        """The rows `rows` (a bool mask, or indices) start afresh: their next token is at position 0, and
        no state of theirs is kept (keys past a row's position are masked; wavelet inputs and linear
        attention states are cleared). For streams that each go their own way. In place: from here on
        decoding takes a position per row."""
        self.pos[rows] = 0
        self.together = False
        if self.bias is not None:
            self.bias[rows] = -math.inf
        for layer in self.layers:
            for part in (layer.attn, layer.wavelet):
                if part is not None and hasattr(part, 'restart'):
                    part.restart(rows)

    def tensors(self):
        """Every tensor a decoding step writes (to put them back after a trial run)."""
        shared = [self.pos] + ([self.bias] if self.bias is not None else []) + (list(self.rope) if self.head_size else []) + \
            ([self.slots, self.index, self.doubled, self.turned] if self.doubled is not None else [])
        return shared + [t for layer in self.layers for part in layer if part is not None for t in part.tensors()]


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        if not config.vocab_size:
            raise ValueError("vocab_size=0: a GPT needs its dataset's vocabulary (GPTConfig.for_data)")
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

    def options(self):
        """The options this model sets away from the plain GPT, as 'key=value, ...' (for a console line)."""
        plain = GPTConfig(vocab_size=self.config.vocab_size)
        keys = ('wavelet', 'position', 'attention', 'head')
        return ', '.join(f"{k}={getattr(self.config, k)}" for k in keys if getattr(self.config, k) != getattr(plain, k)) \
            or 'a plain GPT'

    def describe(self):
        """What a run's log records about the model: its parameter counts, and an option's own facts."""
        out = {'params': self.get_num_params(), 'params_total': self.get_num_params(False)}
        if self.config.attention == 'linear':  # fixed, not learned: the log says what they were
            out['decays'] = [round(g, 6) for g in decay_rates(self.config.n_head).tolist()]
        return out

    def autocast_linears(self):
        """The Linear layers that run under autocast (every matmul but linear attention's phi and the Fourier
        head's, which run in float32): what a decoder whose weights are cast once casts (generate.py)."""
        parts = [m for block in self.transformer.h for m in (block.attn.c_attn, block.attn.c_proj,
                                                             block.mlp.c_fc, block.mlp.c_proj)]
        return parts + ([self.lm_head] if isinstance(self.lm_head, nn.Linear) else [])

    def converted_tensors(self):
        """What a softmax checkpoint lacks when converted to linear attention: the feature maps phi."""
        return {name for name, _ in self.named_parameters() if '.attn.phi.' in name}

    def forward(self, idx, targets=None, cache=None):
        """Logits (B, T, V) and the losses, or with no targets the last position's logits (B, 1, V) and None.
        The losses: 'loss', what training minimises, and what it is made of, each worth logging: 'nll', the
        mean negative log-likelihood of the targets (nats per token), and an option's own terms ('regulariser':
        the Fourier head's). idx (B, T) holds the tokens at positions 0 .. T-1; a cache, if given, is filled."""
        B, T = idx.size()
        limit = self.context_limit
        assert limit is None or T <= limit, f"sequence of {T} > block_size {limit}"
        x = self.transformer.wte(idx)
        if 'wpe' in self.transformer:
            x = x + self.transformer.wpe(torch.arange(T, device=idx.device))
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None, cache.layers[i] if cache is not None else None)
        if cache is not None:
            cache.filled(B, T, idx.device)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None  # only the last position is needed to sample
        logits = self.lm_head(x)
        losses = {'nll': F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-1)}
        if isinstance(self.lm_head, FourierHead):  # its smoothness penalty (the paper's code never adds it)
            losses['regulariser'] = self.lm_head.regulariser(x)
        losses['loss'] = sum(losses.values())
        return logits, losses

    def decode(self, idx, cache):
        """One more token per row, idx (B, 1), at position cache.pos (one for all rows, or one per row after
        cache.restart) after a forward that filled the cache: its logits (B, 1, V). Every shape is the same at every position and the cache is written in place,
        so this step can be compiled once and captured as a CUDA graph (generate.py). The caller keeps
        cache.pos below context_limit."""
        pos = cache.pos[0] if cache.together else cache.pos  # a 0-d view: the cheaper writes
        cache.turn(pos)
        x = self.transformer.wte(idx)
        if 'wpe' in self.transformer:
            x = x + self.transformer.wpe(pos.view(-1))[:, None]
        x = self.transformer.drop(x)
        for block, layer in zip(self.transformer.h, cache.layers):
            x = block(x, pos, layer)
        cache.pos += 1
        return self.lm_head(self.transformer.ln_f(x))

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

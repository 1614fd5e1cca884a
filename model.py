"""
The GPT of this project, with the WaveletGPT operation as one switch (config.wavelet).

Read top to bottom: the wavelet operation first (it is the paper), then the nanoGPT-shaped blocks
that call it, then the GPT. With wavelet='none' this is a plain GPT-2 style decoder. Generation
keeps a Cache (attention keys and values, the wavelet's running sums), so a new token costs one step.

WaveletGPT (Verma, arXiv 2409.12924): after every decoder block, half of the residual stream's
coordinates are replaced by causal moving averages over the past k tokens, k growing in dyadic
levels across coordinates (2, 4, ..., block_size). Those are Haar approximation coefficients
computed causally and without downsampling, so every layer sees the sequence at many time scales.
'haar' adds no parameters; 'learnable' turns each box into a trainable kernel initialised to it.
'ema' is a control from the paper's reviews: exponential moving averages instead of boxes, with
the same spans.
"""
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 512
    vocab_size: int = 27
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


# ----------------------------------------------------------------------------------------------
# The wavelet operation

def wavelet_windows(config):
    """Window k_i of each averaged coordinate i < n_mod: level 1 + floor(L*i/n_mod), k = 2**level."""
    n_mod = round(config.wavelet_frac * config.n_embd)
    levels = config.wavelet_levels or int(math.log2(config.block_size))
    if config.wavelet_window:
        return [config.wavelet_window] * n_mod
    return [2 ** (1 + (levels * i) // n_mod) for i in range(n_mod)]


def causal_moving_average(x, start, count):
    """
    y[t, i] = sum of x[s, i] for s in (t - k_i, t], divided by count[t, i].
    x: (B, T, n) float32. Prefix sums make this O(T) whatever k is: window sum = S[t] - S[t - k].
    S gets a zero row in front (row t+1 holds S[t]), and start[t, i] = max(t + 1 - k_i, 0) is the
    row of S[t - k_i] in it: zero before the first token.
    """
    B, T, n = x.shape
    S = F.pad(x.cumsum(1), (0, 0, 1, 0))
    return (S[:, 1:] - S.gather(1, start[:T].expand(B, T, n))) / count[:T]


def causal_convolution(x, kernel):
    """
    y[t, i] = sum over lag of kernel[lag, i] * x[t - lag, i], zero before the start.
    x: (B, T, n), kernel: (T, n). By FFT: O(T log T) whatever the kernel length (on CPU about 3x
    faster than a grouped conv1d with 512-tap kernels). Padding to 2T makes the circular
    convolution of the FFT a linear one.
    """
    T, n = x.size(1), 2 * x.size(1)
    y = torch.fft.irfft(torch.fft.rfft(x, n=n, dim=1) * torch.fft.rfft(kernel, n=n, dim=0), n=n, dim=1)
    return y[:, :T]


class Wavelet(nn.Module):
    """Overwrites the first n_mod coordinates of the residual stream with causal averages."""

    def __init__(self, config):
        super().__init__()
        windows = wavelet_windows(config)
        if not 0 < len(windows) <= config.n_embd or min(windows) < 1:
            raise ValueError(f"wavelet_frac={config.wavelet_frac} and wavelet_window={config.wavelet_window} "
                             "leave no coordinate to average; use 0 < wavelet_frac <= 1")
        self.n_mod = len(windows)
        self.groups = []  # (start, end, k): runs of coordinates with the same window
        for i, k in enumerate(windows):
            if self.groups and self.groups[-1][2] == k:
                self.groups[-1][1] = i + 1
            else:
                self.groups.append([i, i + 1, k])
        window = torch.tensor(windows, dtype=torch.float32)
        t = torch.arange(1, config.block_size + 1, dtype=torch.float32)[:, None]
        count = torch.minimum(t, window) if config.wavelet_pad == 'valid' else window.expand(len(t), -1)
        # buffers, not parameters, and not saved: 'haar' and 'none' share one state_dict
        self.register_buffer('count', count.contiguous(), persistent=False)
        start = (torch.arange(config.block_size)[:, None] + 1 - window.long()).clamp(min=0)
        self.register_buffer('start', start, persistent=False)
        self.mode = config.wavelet
        if self.mode == 'learnable':
            # A causal kernel per coordinate, initialised to the box 1/k, so that at step 0 this is
            # exactly 'haar'. With a cap of c taps, each tap weighs k/c consecutive tokens
            # (a piecewise-constant kernel): still the box at init, c parameters instead of k.
            self.taps = [min(k, config.wavelet_max_kernel or k) for _, _, k in self.groups]
            for (_, _, k), c in zip(self.groups, self.taps):
                if k % c:
                    raise ValueError(f"wavelet_max_kernel={c} must divide every window k (got k={k}); use a power of two")
            self.kernels = nn.ParameterList(
                nn.Parameter(torch.full((b - a, c), 1.0 / k)) for (a, b, k), c in zip(self.groups, self.taps))
            # zero padding then rescaling by k/count reproduces 'valid' at init too
            self.register_buffer('scale', window / count, persistent=False)
        elif self.mode == 'ema':
            # weights alpha * (1 - alpha)^lag with alpha = 2 / (k + 1): an EMA whose span is k
            alpha = 2.0 / (window + 1.0)
            lag = torch.arange(config.block_size, dtype=torch.float32)[:, None]
            ema = alpha * (1.0 - alpha) ** lag
            self.register_buffer('ema_kernel', ema, persistent=False)
            scale = 1.0 / ema.cumsum(0) if config.wavelet_pad == 'valid' else torch.ones_like(ema)
            self.register_buffer('scale', scale, persistent=False)

    def forward(self, x, cache=None):
        """x: (B, T, C), positions 0 .. T-1. With a cache, also keep what step() needs next."""
        # float32 even under autocast: prefix sums of bf16 values lose their low bits
        with torch.autocast(device_type=x.device.type, enabled=False):
            xm = x[..., :self.n_mod].float()
            if self.mode == 'haar':
                y = causal_moving_average(xm, self.start, self.count)
            else:
                T = xm.size(1)
                y = causal_convolution(xm, self.kernel(T) if self.mode == 'learnable' else self.ema_kernel[:T])
                y = y * self.scale[:T]
            if cache is not None:
                self.prefill(xm, cache)
        return torch.cat([y.to(x.dtype), x[..., self.n_mod:]], dim=-1)

    def prefill(self, xm, cache):
        """Keep what step() needs from the inputs xm (B, T, n_mod), in buffers allocated once.
        haar: the prefix sums S (row t+1 holds S[t], row 0 is zero). learnable, ema: the inputs, and
        the kernel reversed, so that step() is one dot product per coordinate."""
        B, T, n = xm.shape
        size = self.count.size(0)  # block_size
        if self.mode == 'haar':
            if 'prefix' not in cache:
                cache['prefix'] = xm.new_zeros(B, size + 1, n)
                # where S[t - k_i] is in the flattened buffer, for every t and i (row 0 when t < k_i)
                cache['window_start'] = self.start * n + torch.arange(n, device=xm.device)
            cache['prefix'][:, 1:T + 1] = xm.cumsum(1)
        else:
            if 'history' not in cache:
                cache['history'] = xm.new_zeros(B, size, n)
                kernel = self.kernel(size) if self.mode == 'learnable' else self.ema_kernel
                cache['kernel'] = kernel.flip(0).contiguous()  # row size-1-lag
            cache['history'][:, :T] = xm

    def step(self, x, cache, pos):
        """forward() for one new token x (B, C) at position pos, from the cache of the positions
        before: O(1) per coordinate for haar (two prefix sums), O(pos) for a kernel. In float32, and
        only sums and products, which autocast leaves alone."""
        xm = x[:, :self.n_mod].float()
        if self.mode == 'haar':
            S = cache['prefix']
            now = S[:, pos] + xm
            S[:, pos + 1] = now
            before = S.view(S.size(0), -1).index_select(1, cache['window_start'][pos])  # S[pos - k_i]
            y = (now - before) / self.count[pos]
        else:
            history, kernel = cache['history'], cache['kernel']
            history[:, pos] = xm
            size = kernel.size(0)
            y = (history[:, :pos + 1] * kernel[size - 1 - pos:]).sum(1) * self.scale[pos]
        x[:, :self.n_mod] = y  # x is this step's own tensor (Block.step made it): overwrite in place
        return x

    def kernel(self, T):
        """The learnable kernels as one (T, n_mod) tensor: row lag holds each coordinate's weight
        for the token lag steps back (row 0: the current token). A capped kernel's c taps are
        stretched over k lags, m = k/c each."""
        h = [F.pad(w.repeat_interleave(k // c, dim=1), (0, self.count.size(0) - k))
             for (_, _, k), c, w in zip(self.groups, self.taps, self.kernels)]
        return torch.cat(h, 0).t()[:T]


# ----------------------------------------------------------------------------------------------
# The transformer (nanoGPT's module names, so checkpoints and tools stay familiar)

# Decoding one token is so little arithmetic that nn.Module's per-call overhead is a sizable share
# of a step: the step() methods call the functions behind LayerNorm and Linear directly.
def layer_norm(m, x):
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)


def linear(m, x):
    return F.linear(x, m.weight, m.bias)


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.block_size = config.block_size

    def forward(self, x, cache=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # keep the keys and values: later tokens attend to them (step)
            if 'k' not in cache:
                cache['k'] = k.new_empty(B, self.n_head, self.block_size, C // self.n_head)
                cache['v'] = torch.empty_like(cache['k'])
            cache['k'][:, :, :T] = k
            cache['v'][:, :, :T] = v
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def step(self, x, cache, pos):
        """One new token x (B, C) at position pos attends to the cached keys and values, and its own."""
        B, C = x.size()
        q, k, v = linear(self.c_attn, x).view(B, 3, self.n_head, 1, C // self.n_head).unbind(1)
        cache['k'][:, :, pos:pos + 1] = k
        cache['v'][:, :, pos:pos + 1] = v
        y = F.scaled_dot_product_attention(q, cache['k'][:, :, :pos + 1], cache['v'][:, :, :pos + 1])
        return linear(self.c_proj, y.view(B, C))  # decoding is inference: no dropout


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):

    def __init__(self, config, wavelet):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.wavelet = Wavelet(config) if wavelet else None

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        x = x + self.mlp(self.ln_2(x))
        if self.wavelet is not None:  # the paper: the block's output is overwritten, later blocks see it
            x = self.wavelet(x, cache)
        return x

    def step(self, x, cache, pos):
        """forward() for one new token x (B, C) at position pos, given the cache of the positions before."""
        x = x + self.attn.step(layer_norm(self.ln_1, x), cache, pos)
        x = x + linear(self.mlp.c_proj, F.gelu(linear(self.mlp.c_fc, layer_norm(self.ln_2, x))))
        if self.wavelet is not None:
            x = self.wavelet.step(x, cache, pos)
        return x


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        if config.wavelet not in ('none', 'haar', 'learnable', 'ema'):
            raise ValueError(f"wavelet={config.wavelet!r}: use 'none', 'haar', 'learnable' or 'ema'")
        if config.wavelet_pad not in ('zero', 'valid'):
            raise ValueError(f"wavelet_pad={config.wavelet_pad!r}: use 'zero' or 'valid'")
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} is not a multiple of n_head={config.n_head}")
        self.config = config
        use = [config.wavelet != 'none'] * config.n_layer
        if config.n_layer and not config.wavelet_last:
            use[-1] = False
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, w) for w in use]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
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

    def get_num_params(self, non_embedding=True):
        """Parameter count; the position embedding is left out by default, as in nanoGPT."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None, cache=None):
        """Logits (B, T, V) and the loss, or with no targets the last position's logits (B, 1, V).
        With a cache (see generate), idx is a context from position 0, kept for step()."""
        B, T = idx.size()
        assert T <= self.config.block_size, f"sequence of {T} > block_size {self.config.block_size}"
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache.layers[i] if cache is not None else None)
        if cache is not None:
            cache.pos = T
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None  # only the last position is needed to sample
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # decay matrices and embeddings; not biases, LayerNorms, or wavelet kernels (decay would
        # pull the averages towards zero instead of towards the box they start as)
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (decay if p.dim() >= 2 and '.wavelet.' not in name else no_decay).append(p)
        groups = [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=device_type == 'cuda')

    def step(self, idx, cache):
        """The logits (B, V) after one new token per sequence, idx (B,), at position cache.pos:
        what forward() would give for the whole context, at the cost of one position."""
        pos = cache.pos
        assert pos < self.config.block_size, f"the context is full ({pos} tokens): encode a shorter one"
        x = self.transformer.wte.weight[idx] + self.transformer.wpe.weight[pos]
        for block, layer in zip(self.transformer.h, cache.layers):
            x = block.step(x, layer, pos)
        cache.pos = pos + 1
        return linear(self.lm_head, layer_norm(self.transformer.ln_f, x))

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None, use_cache=True, slide=0):
        """
        Sample max_new_tokens after idx (B, T): B sequences side by side, one prompt length.

        use_cache=True: the context goes through the model once (forward), then each new token takes
        one step() that reuses every layer's keys and values and the wavelet's running state (a Cache).
        use_cache=False: the whole context is run again for every token; slow, and the same logits.

        The context: positions are learned, 0 .. block_size-1, so a context cannot slide by one token
        and keep its cache. When a new token would make it longer than block_size, the oldest `slide`
        tokens of that block_size+1 are dropped (default block_size // 2) and the rest is encoded again
        from position 0; a prompt longer than block_size is cut the same way. Both paths follow this
        rule, so they agree token for token. slide=1 is nanoGPT's rule (always the last block_size
        tokens): with the cache, that means encoding the whole context again for every token.
        """
        block_size = self.config.block_size
        slide = slide or block_size // 2
        assert 1 <= slide <= block_size, f"slide={slide} should be in 1..block_size"
        B, T = idx.size()
        out = idx.new_empty(B, T + max_new_tokens)  # allocated once: no copy of the sequence per token
        out[:, :T] = idx
        cache = Cache(self.config.n_layer) if use_cache else None
        start = 0
        with decoding(idx.device):
            for end in range(T, T + max_new_tokens):  # the context is out[:, start:end]
                if end - start > block_size:
                    start = end - (block_size + 1 - slide)
                if cache is not None and 0 < cache.pos == end - start - 1:  # one token more than the cache holds
                    logits = self.step(out[:, end - 1], cache)
                else:  # the whole context (again, with the cache when it has moved)
                    logits = self(out[:, start:end], cache=cache)[0][:, -1]
                out[:, end:end + 1] = sample_next(logits, temperature, top_k, generator)
        return out  # allocated outside inference mode: an ordinary tensor


@contextmanager
def decoding(device):
    """What generate() runs under. No autograd bookkeeping at all (about 6% faster per token than
    no_grad), and on a CPU in float32 no oneDNN: its per-call setup costs more than one token's GELU
    and small matmuls (about 10% of a step)."""
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = mkldnn and (device.type != 'cpu' or torch.is_autocast_enabled('cpu'))
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.backends.mkldnn.enabled = mkldnn


class Cache:
    """What incremental decoding keeps between steps: `pos` tokens of the context are encoded, and per
    layer a dict holds the attention's keys and values and the wavelet's state. The buffers are
    allocated block_size long at the first use, and reused when forward() encodes a new context."""

    def __init__(self, n_layer):
        self.pos = 0
        self.layers = [{} for _ in range(n_layer)]


def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    """One token per row from logits (B, V); temperature 0 means greedy."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits[logits < v[:, [-1]]] = -float('inf')
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)

"""
M1, the byte-level GPT that drives the Equal-Info coder, in arithmetic whose every number is the same
whatever the batch, a row's place in it, the thread count, the order the windows are coded in, and
the CPU: the coder's frequency tables are a function of each window's bytes alone.

Why: the decoder must get bit-identical tables to the encoder's, yet the float result of a matmul, a
sum or a softmax depends on the order of its additions, which depends on shapes, threads and kernels.
So M1 runs here with int8 weights (a scale per output channel; a LayerNorm's weight and bias folded
into the Linear after it) and int8 inputs to every matmul (a scale per row), and every operation is
  - exact integer arithmetic: torch._int_mm (int8 x int8 -> int32), and sums (reductions, bmm) of
    integers held in float tensors whose every partial sum stays below 2^24 (float32) or 2^53
    (float64), so exact in any order; or
  - one IEEE-754 operation per element (+, -, *, /, sqrt, round, conversions, min, max), each correctly
    rounded, so the same in any kernel, vectorised or not, on any thread; or
  - a look-up in a table made once: exp (exact integers, from decimal's correctly rounded exp) and the
    normal CDF of GELU (math.erf).
No float sum ever adds a non-integer: layer norm puts each row on an integer grid of its largest value
before its mean and variance, attention weights are integers from the exp table, and so are the byte
frequencies (a softmax computed as integers over their exact sum). The exactness rests on the bounds
written next to each sum below, and the tests check it: a row's tables against other batches, other
rows beside it, places in the batch, thread counts and restarts at every step. A fingerprint of the
tables of a fixed text (ByteModel.numbers) goes into meta.json; a machine that computes other numbers
is refused before decoding.

The encoder may then look past a window's end (the Delay rule needs the byte that no longer fits) and
start the row again where the window really ended, while the decoder steps through each window once:
their schedules differ, their tables do not. A window's first table (BOS alone) and BOS's keys and
values are the same in every window: computed once, so a window costs one step per byte after its
first.

Against the float M1 it was trained as, this costs about 0.03 % of compression on pydocs (bench.py
--mode=coder measures it; test_equal_info.py bounds it).
"""
import ctypes
import hashlib
import json
import math
import os
from contextlib import contextmanager
from decimal import Decimal, getcontext

import numpy as np
import torch

from checkpoints import load_checkpoint, load_model_state
from errors import UserError
from model import GPT, GPTConfig
from tokens.bytes import BOS, VOCAB_SIZE
from equal_info.windows import PRECISION

TOTAL = 1 << PRECISION   # frequencies out of 2^14
EXP_STEP = 256           # the exp tables' arguments: a grid of 1/256
GELU_STEP, GELU_RANGE = 64, 8  # the normal CDF on a grid of 1/64 over [-8, 8]
TINY = 1e-30             # the scale of an all-zero row
PROBE = (b"def f(x):\n    return x  # M1's numbers, the same on every machine? \xe2\x9c\x93 " * 8)[:480]


def exp_table(scale, end):
    """round(scale * e^(-i / EXP_STEP)) for i = 0 .. end-1, then 0: exact (decimal's exp is correctly rounded)."""
    getcontext().prec = 40
    values = [int((Decimal(-i) / EXP_STEP).exp() * scale + Decimal('0.5')) for i in range(end)]
    return torch.tensor(values + [0], dtype=torch.float64)


def normal_cdf_table():
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 at x = -8, -8 + 1/64, ..., 8, in float32."""
    n = GELU_STEP * GELU_RANGE
    return torch.tensor([0.5 * (1 + math.erf(i / GELU_STEP / math.sqrt(2))) for i in range(-n, n + 1)],
                        dtype=torch.float32)


def largest(x):
    """max |x| of each row (..., 1), at least TINY (for a row of zeros)."""
    return x.abs().amax(-1, keepdim=True).clamp_min_(TINY)


def quantise(x):
    """x (..., n) -> (q, s): integers |q| <= 127 (in x's dtype, in place of x) and a scale per row, x ~ q * s."""
    s = largest(x) / 127
    return x.div_(s).round_(), s


def quantise_int8(x):
    q, s = quantise(x)
    return q.to(torch.int8), s


class Linear:
    """A linear layer with int8 weights (a scale per output): int8 rows in, float32 out. A LayerNorm before it
    is folded in: its weight into the columns, its bias into the bias (W @ bias summed by math.fsum, exactly
    rounded, the same on every machine). output_times * (W (input_times * x) + b) + output_plus comes in the
    same passes (for GELU's table)."""

    def __init__(self, layer, ln=None, input_times=1, output_times=1, output_plus=0.0):
        w = layer.weight.detach().double()
        bias = torch.zeros(len(w), dtype=torch.float64) if layer.bias is None else layer.bias.detach().double()
        if ln is not None and ln.bias is not None:
            rows = (w * ln.bias.detach().double()).tolist()  # float32 products: exact in float64
            bias = torch.tensor([math.fsum([b] + row) for b, row in zip(bias.tolist(), rows)], dtype=torch.float64)
        if ln is not None and ln.weight is not None:
            w = w * ln.weight.detach().double()
        w, scale = quantise(w.float())
        self.weight = w.to(torch.int8).t()  # (in, out), as _int_mm takes it
        self.scale = scale.view(1, -1) * (input_times * output_times)
        self.bias = None if not bias.any() and not output_plus else bias.float() * output_times + output_plus

    def __call__(self, q, s):
        """q (R, in) int8, s (R, 1): the rows q * s."""
        y = torch._int_mm(q, self.weight) * s  # int32 to float32 (exact below 2^24: 127^2 x 512 here), one product
        y.mul_(self.scale)
        return y if self.bias is None else y.add_(self.bias)


def grid_steps(C):
    """The integer grid layer norm puts a row of C numbers on: g steps of its largest value, so that
    |r| <= g, |sum r| <= C g and |c| = |C r - sum r| <= 2 C g <= 2^24 (exact in float32), and
    sum c^2 <= 4 C^3 g^2 <= 2^52 (exact in float64). C = 128: 2^14 steps."""
    L = math.ceil(math.log2(C))
    return 2 ** min(23 - L, (50 - 3 * L) // 2)


def layer_norm(x, eps, grid):
    """LayerNorm of each row of x (R, C) without its weight and bias (folded into the next Linear), quantised
    for the matmul: (q (R, C) int8, s (R, 1)). The row is put on an integer grid first (grid_steps), so that
    its mean and variance are exact."""
    C = x.shape[-1]
    unit = largest(x) / grid                             # the grid's step
    r = torch.div(x, unit).round_()
    total = r.sum(-1, keepdim=True)
    c = r.mul_(C).sub_(total)                            # C (r - mean)
    var = c.double()
    var = var.mul_(var).sum(-1, keepdim=True)            # C^2 sum (r - mean)^2
    q, top = quantise_int8(c)
    # x - mean = c * unit / C, so the normalised row is c / sqrt(var / C + eps (C / unit)^2): per row, in numpy
    # (float64, one IEEE operation at a time, as torch's; a few rows' worth of work is cheaper there)
    var, unit, top = var.numpy(), unit.double().numpy(), top.double().numpy()
    return q, torch.from_numpy((top / np.sqrt(var / C + (eps * C * C) / (unit * unit))).astype(np.float32))


class Cache:
    """Per row: the position of its next byte, and each layer's keys and values (int8 values held in float32,
    for exact float32 matmuls) with their scales, in cap slots. Step t writes slot t % cap of every row, so
    a row that starts a window before step t keeps its BOS in slot (t - 1) % cap and position p in slot
    (t - 1 + p) % cap: one write for all rows, and keys in an order that changes nothing (attention's sums
    are of integers)."""

    def __init__(self, rows, n_layer, n_head, head_dim, cap):
        L, R, H, D, P = n_layer, rows, n_head, head_dim, cap
        self.t, self.pos = 0, torch.zeros(R, dtype=torch.long)
        self.k, self.v = torch.zeros(L, R, H, P, D), torch.zeros(L, R, H, P, D)
        self.k_scale, self.v_scale = torch.zeros(L, R, H, P), torch.zeros(L, R, H, P)

    def tensors(self):
        return self.k, self.k_scale, self.v, self.v_scale

    def masked(self):
        """(R, 1, cap): the slots that do not hold one of a row's positions up to its current one."""
        P = self.k.shape[3]
        age = (self.t - torch.arange(P)) % P  # how many steps ago each slot was written
        return (age > self.pos[:, None]).view(-1, 1, P)

    def select(self, rows):
        """A cache of the rows `rows` (an index tensor) alone."""
        out = Cache(0, 0, 0, 0, 0)
        out.t, out.pos = self.t, self.pos[rows]
        out.k, out.k_scale, out.v, out.v_scale = (t[:, rows] for t in self.tensors())
        return out


class IntegerM1:
    """M1 (a GPT of wavelet='none', softmax attention, learned positions, linear head) in exact arithmetic,
    decoding one byte per row per step: new_cache(rows), restart(cache, rows) at each window's start (BOS
    at position 0), then step(cache, bytes) -> the next byte's cumulative frequency tables."""

    def __init__(self, model, cap):
        cfg = model.config
        plain = dict(wavelet='none', attention='softmax', position='learned', head='linear')
        other = {k: getattr(cfg, k) for k, v in plain.items() if getattr(cfg, k) != v}
        if other:
            raise UserError(f"M1 has {', '.join(f'{k}={v!r}' for k, v in other.items())}: the coder runs a plain GPT "
                            f"({', '.join(f'{k}={v!r}' for k, v in plain.items())}); train M1 with "
                            f"config/equal_info_m1.py")
        if cap > cfg.block_size:
            raise UserError(f"cap={cap} bytes per window needs an M1 with block_size >= {cap}; this one has "
                            f"{cfg.block_size}: lower cap, or train M1 with a longer block_size")
        t = model.transformer
        self.cap, self.n_head, self.head_dim = cap, cfg.n_head, cfg.n_embd // cfg.n_head
        self.grid = grid_steps(cfg.n_embd)
        self.wte, self.wpe = t.wte.weight.detach().float(), t.wpe.weight.detach().float()
        # the MLP's first layer gives GELU_STEP * x + GELU_STEP * GELU_RANGE + 0.5, the index into the normal CDF's
        # table, so GELU gives GELU_STEP times its value, and the second layer takes that back (powers of two: exact)
        self.blocks = [dict(attn=Linear(b.attn.c_attn, b.ln_1), proj=Linear(b.attn.c_proj), eps_1=b.ln_1.eps,
                            fc=Linear(b.mlp.c_fc, b.ln_2, output_times=GELU_STEP,
                                      output_plus=GELU_STEP * GELU_RANGE + 0.5),
                            out=Linear(b.mlp.c_proj, input_times=1 / GELU_STEP), eps_2=b.ln_2.eps) for b in t.h]
        head = torch.nn.Linear(cfg.n_embd, 256, bias=False)
        head.weight = torch.nn.Parameter(model.lm_head.weight.detach()[:256])  # BOS is never coded
        self.head, self.eps_f = Linear(head, t.ln_f), t.ln_f.eps
        # attention weights: integers <= w_max, so that a weighted sum of int8 values over cap positions
        # stays below 2^24 (exact in float32)
        self.w_max = 1 << int(math.log2((1 << 24) / (127 * cap)))
        self.attn_exp = exp_table(self.w_max, 16 * EXP_STEP).float()
        self.freq_exp = exp_table(1 << 20, 15 * EXP_STEP)  # frequencies: 2^20 * e^-(max logit - logit)
        self.cdf = normal_cdf_table()
        # a window starts with BOS at position 0: its keys, values and table, once
        self.bos = self.new_cache(1)
        with coding():
            self.first = self._step(self.bos, torch.tensor([BOS]))

    def new_cache(self, rows):
        return Cache(rows, len(self.blocks), self.n_head, self.head_dim, self.cap)

    def restart(self, cache, rows):
        """Rows `rows` (an index tensor) start a window: BOS at position 0, their next byte at position 1.
        Returns the tables of their first byte (the same for every window)."""
        cache.pos[rows] = 1
        for mine, bos in zip(cache.tensors(), self.bos.tensors()):  # BOS's keys and values, in every layer
            first = bos.select(3, (self.bos.t - 1) % self.cap)  # (L, 1, H, ...)
            mine.select(3, (cache.t - 1) % self.cap).index_copy_(
                1, rows, first.expand(first.shape[0], len(rows), *first.shape[2:]))
        return self.first.expand(len(rows), -1)

    def step(self, cache, x):
        """x (R,) the byte of each row at its position cache.pos -> (R, 257) int64 cumulative frequencies of the
        byte after it; every row's position moves on by one."""
        if len(x) and int(cache.pos.max()) >= self.cap:
            raise ValueError("a row is past the window's cap")
        return self._step(cache, x.long())

    def _step(self, cache, x):
        R, H, D, P = x.shape[0], self.n_head, self.head_dim, self.cap
        slot, masked = cache.t % P, cache.masked()
        h = self.wte.index_select(0, x).add_(self.wpe.index_select(0, cache.pos))
        for i, b in enumerate(self.blocks):
            qkv, scale = quantise(b['attn'](*layer_norm(h, b['eps_1'], self.grid)).view(R, 3 * H, D))  # per row and head
            cache.k[i, :, :, slot], cache.k_scale[i, :, :, slot] = qkv[:, H:2 * H], scale[:, H:2 * H, 0]
            cache.v[i, :, :, slot], cache.v_scale[i, :, :, slot] = qkv[:, 2 * H:], scale[:, 2 * H:, 0]
            h.add_(b['proj'](*quantise_int8(self._attend(cache, i, qkv[:, :H], scale[:, :H], masked))))
            h.add_(b['out'](*quantise_int8(self._gelu(b['fc'](*layer_norm(h, b['eps_2'], self.grid))))))
        cache.t, cache.pos = cache.t + 1, cache.pos + 1
        return self._tables(self.head(*layer_norm(h, self.eps_f, self.grid)))

    def _attend(self, cache, i, q, q_scale, masked):
        """Softmax attention of each row's query over its keys, in integers: scores of int8 vectors (exact),
        weights from the exp table, a weighted sum of int8 values (exact)."""
        R, H, D, P = q.shape[0], self.n_head, self.head_dim, self.cap
        scores = torch.bmm(q.reshape(R * H, 1, D), cache.k[i].view(R * H, P, D).transpose(1, 2)).view(R, H, P)
        logits = scores.mul_(cache.k_scale[i] * (q_scale / math.sqrt(D))).masked_fill_(masked, -math.inf)
        w = lookup(self.attn_exp, logits.sub_(logits.amax(-1, keepdim=True)).mul_(-EXP_STEP))  # integers; 0: masked
        v_scale = cache.v_scale[i].masked_fill(masked, 0)
        top = v_scale.amax(-1, keepdim=True)
        wv = v_scale.div_(top).mul_(w).round_()  # each weight times its value's scale, on top's integer grid
        out = torch.bmm(wv.view(R * H, 1, P), cache.v[i].view(R * H, P, D)).view(R, H, D)  # < 2^24: exact
        return out.mul_(top.div_(w.sum(-1, keepdim=True))).view(R, H * D)

    def _gelu(self, at):
        """GELU_STEP * GELU(x) = GELU_STEP * x * Phi(x) for at = GELU_STEP * (x + GELU_RANGE) + 0.5, Phi from the
        table at the nearest 1/GELU_STEP (beyond +-GELU_RANGE: 0 or 1)."""
        i = at.clamp(0, len(self.cdf) - 1).int()  # >= 0: truncation is the floor
        return self.cdf.index_select(0, i.view(-1)).view(at.shape).mul_(at.sub_(GELU_STEP * GELU_RANGE + 0.5))

    def _tables(self, logits):
        """(R, 256) logits -> (R, 257) cumulative integer frequencies: each byte 1 + floor(e * (2^14 - 256) / sum e)
        with e = 2^20 e^-(max - logit) from the table (exact integers), what is left to the most probable byte
        (the first on ties)."""
        e = lookup(self.freq_exp, logits.sub_(logits.amax(-1, keepdim=True)).mul_(-EXP_STEP))  # float64, <= 2^20
        # e * (2^14 - 256) < 2^34 and sum e < 2^28: the float64 quotient's floor is the integers' floor
        freq = e.mul(TOTAL - 256).div_(e.sum(-1, keepdim=True)).long().add_(1)
        freq[torch.arange(len(freq)), e.argmax(-1)] += TOTAL - freq.sum(-1)
        return torch.nn.functional.pad(freq.cumsum(-1), (1, 0))


def lookup(table, at):
    """table[round(at)] (half up), `at` clamped to the table: in place of `at` (float indices: an int32
    index_select is the fast gather)."""
    i = at.add_(0.5).clamp_(0, len(table) - 1).int()  # >= 0: truncation is the floor
    return table.index_select(0, i.view(-1)).view(at.shape)


def weights_hash(model):
    """A short fingerprint of a model's settings and weights: a decoder with another M1 is refused."""
    h = hashlib.sha256(json.dumps(vars(model.config), sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def keep_freed_memory():
    """Ask glibc to keep freed memory (no-op elsewhere). Each step allocates and frees the same few MB;
    by default glibc hands large blocks back to the system and faults them in again at the next step,
    which took about half the step's time here."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB come from the heap
    libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD: the heap is not trimmed below 1 GB free


@contextmanager
def coding(threads=1):
    """How the coder runs M1: `threads` threads (its speed: the numbers do not depend on it; on a busy
    machine, more than one is much slower), float32 matmuls at full precision (a reduced-precision
    setting would change the attention's sums), freed memory kept."""
    before = torch.get_num_threads(), torch.get_float32_matmul_precision()
    keep_freed_memory()
    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision('highest')
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before[0])
        torch.set_float32_matmul_precision(before[1])


class ByteModel:
    """An M1 checkpoint, loaded and checked: a GPT trained on a bytes dataset (tokens/bytes.py)."""

    def __init__(self, path):
        ckpt = load_checkpoint(path)
        kind = ckpt['meta'].get('tokenizer')
        if kind != 'bytes' or ckpt['model_args']['vocab_size'] != VOCAB_SIZE:
            raise UserError(f"{path} is a model of {kind!r} tokens (vocabulary {ckpt['model_args']['vocab_size']}), "
                            f"not a byte-level model; give an M1 trained on a bytes dataset (prepare/bytes.py)")
        self.path = path
        self.model = GPT(GPTConfig(**ckpt['model_args']))
        load_model_state(self.model, ckpt['model'])
        self.model.eval()
        self.hash = weights_hash(self.model)
        self.block_size = self.model.config.block_size
        self.params = self.model.get_num_params(non_embedding=False)
        self._coders = {}

    def coder(self, cap):
        """M1 as the coder runs it, for windows of at most `cap` bytes (checked: a one-line error if it cannot)."""
        if cap not in self._coders:
            self._coders[cap] = IntegerM1(self.model, cap)
        return self._coders[cap]

    def numbers(self, cap):
        """A fingerprint of the tables M1 gives on this machine for a fixed text (PROBE, in windows of cap bytes):
        the same wherever M1 computes what it computed when the tokens were made."""
        coder, probe = self.coder(cap), torch.tensor(list(PROBE))
        n = max(cap - 1, 1)  # bytes read per window
        rows = torch.arange(len(PROBE) // n)
        with coding():
            cache = coder.new_cache(len(rows))
            h = hashlib.sha256(coder.restart(cache, rows).numpy().tobytes())
            for j in range(cap - 1):
                h.update(coder.step(cache, probe[rows * n + j]).numpy().tobytes())
        return h.hexdigest()[:16]

    def check_numbers(self, cap, expected):
        if expected and self.numbers(cap) != expected:
            raise UserError(f"M1 gives other numbers on this machine (torch {torch.__version__}) than where these tokens "
                            f"were made (or meta.json's cap was edited), so they would not decode right; decode them "
                            f"with the torch version that made them (meta.json's m1.torch), or rebuild them here")

    def describe(self, cap):
        """What meta.json records about M1."""
        return {'path': os.path.abspath(self.path),  # found from any working folder
                'hash': self.hash, 'params': self.params, 'n_layer': self.model.config.n_layer,
                'n_embd': self.model.config.n_embd, 'numbers': self.numbers(cap), 'torch': torch.__version__}

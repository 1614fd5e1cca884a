"""
M1: the byte-level GPT that drives the Equal-Info coder, and the one way it is ever called.

The decoder must get bit-identical frequency tables to the encoder's, yet the float result of a
matmul can depend on the batch shape, a row's place in the batch and the thread count. So every
call, when encoding and when decoding, is the same call: a (rows, cap) batch of windows
[BOS, byte, byte, ...] padded with zeros after the bytes that are known, one stream per row and
always the same row, under a fixed thread count, float32, the logits turned into integer tables
by one deterministic rule. Attention is causal, so the padding sits after every position that is
read and cannot change it (masked keys weigh exactly zero); check_causal_exact() checks this on
the model at hand, in the coder's own shape, before any coding.
"""
import hashlib
import json
import os
from contextlib import contextmanager

import numpy as np
import torch

from checkpoints import load_checkpoint, load_model_state
from errors import UserError
from model import GPT, GPTConfig
from tokens.bytes import BOS, VOCAB_SIZE
from equal_info.windows import PRECISION

TOTAL = 1 << PRECISION


def frequency_tables(logits):
    """M1's logits (..., 257) -> cumulative integer frequencies (..., 257) of the 256 bytes (BOS is
    never coded): cum[0] = 0, cum[256] = 2^14, every byte at least 1. Softmax in float64, each byte
    1 + floor(p * (2^14 - 256)); what is left goes to the most probable byte (the first on ties)."""
    p = torch.softmax(logits[..., :256].double(), dim=-1)
    freq = 1 + torch.floor(p * (TOTAL - 256)).long()
    left = TOTAL - freq.sum(-1, keepdim=True)
    freq.scatter_add_(-1, p.argmax(-1, keepdim=True), left)
    return torch.nn.functional.pad(freq.cumsum(-1), (1, 0))


def weights_hash(model):
    """A short fingerprint of a model's settings and weights: a decoder with another M1 is refused."""
    h = hashlib.sha256(json.dumps(vars(model.config), sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@contextmanager
def fixed_threads(n):
    """n threads and oneDNN on, whatever the caller set (generate.py turns oneDNN off): the same kernels
    at encode and decode time."""
    before = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(n)
    torch.backends.mkldnn.enabled = True
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.backends.mkldnn.enabled = before[1]


class ByteModel:
    """An M1 checkpoint, loaded and checked: a GPT trained on a bytes dataset (tokens/bytes.py)."""

    def __init__(self, path, threads=1):
        ckpt = load_checkpoint(path)
        kind = ckpt['meta'].get('tokenizer')
        if kind != 'bytes' or ckpt['model_args']['vocab_size'] != VOCAB_SIZE:
            raise UserError(f"{path} is a model of {kind!r} tokens (vocabulary {ckpt['model_args']['vocab_size']}), "
                            f"not a byte-level model; give an M1 trained on a bytes dataset (prepare/bytes.py)")
        self.path, self.threads = path, threads
        self.model = GPT(GPTConfig(**ckpt['model_args']))
        load_model_state(self.model, ckpt['model'])
        self.model.eval()
        self.hash = weights_hash(self.model)
        self.block_size = self.model.config.block_size
        self.params = self.model.get_num_params(non_embedding=False)

    def describe(self):
        """What meta.json records about M1."""
        return {'path': os.path.abspath(self.path),  # found from any working folder
                'hash': self.hash, 'params': self.params, 'n_layer': self.model.config.n_layer,
                'n_embd': self.model.config.n_embd}

    def tables(self, windows):
        """windows: (rows, cap) int64 array, each row BOS then bytes then zero padding -> (rows, cap, 257)
        int64 cumulative tables; the table at position j is M1's for the byte after windows[:, :j+1]."""
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.int64))
        with fixed_threads(self.threads), torch.inference_mode():
            logits, _ = self.model(x, x)  # with targets, forward returns every position's logits
            return frequency_tables(logits).numpy()

    def check_causal_exact(self, rows, cap, seed=0):
        """Refuse a model whose tables at a position change when later bytes or other rows change (an
        FFT-based option mixes all positions in its rounding): its coding would not decode."""
        if cap > self.block_size:
            raise UserError(f"cap={cap} bytes per window needs an M1 with block_size >= {cap}; {self.path} has "
                            f"{self.block_size}: lower cap, or train M1 with a longer block_size")
        rng = np.random.default_rng(seed)
        a = rng.integers(0, 256, size=(rows, cap))
        a[:, 0] = BOS
        b = rng.integers(0, 256, size=(rows, cap))
        keep = rng.integers(1, cap + 1, size=rows)  # row r keeps its first keep[r] tokens in b
        b[:, 0] = BOS
        for r in range(rows):
            b[r, :keep[r]] = a[r, :keep[r]]
        ta, tb = self.tables(a), self.tables(b)
        for r in range(rows):
            if not np.array_equal(ta[r, :keep[r]], tb[r, :keep[r]]):
                raise UserError(f"{self.path}: M1's numbers at a position change with the bytes after it, so its "
                                f"coding could not be decoded exactly; train M1 with wavelet='none' (or 'haar')")

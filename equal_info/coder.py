"""
Equal-Info Windows (Lester et al., "Training LLMs over Neurally Compressed Text", arXiv 2404.03626):
text compressed by an arithmetic coder that a small byte-level GPT drives (M1, equal_info/m1.py),
cut into windows that each compress to exactly `bits` bits, the coder and M1's context starting
afresh at every window (the exact arithmetic and the Delay rule: equal_info/windows.py). M2 trains on
the windows' bits, most significant first, in tokens of token_bits: b=16 is one token of 65,536
(v=65k) or two of 256 (v=256).

Speed: a text is cut into `rows` contiguous streams coded side by side. One batched M1 call gives
every stream's next window at once (teacher forced over cap positions), so encoding costs one call
per window step. Decoding does not know the bytes ahead: one call per byte step, about
bytes-per-window times slower.

A dataset keeps, beside each split's tokens, the byte count of every window ({split}.bytes.bin:
bits per byte) and the window count of every stream ({split}.streams.bin: which row decodes what).
"""
import os

import numpy as np
from tqdm import tqdm

from errors import UserError
from tokens.base import Tokenizer
from tokens.bytes import BOS
from equal_info.windows import PRECISION, WindowDecoder, encode_window


def encode_streams(m1, data, rows, cap, bits, progress=True):
    """
    data (bytes) -> (values, counts, stream_windows, information): every window's b-bit value and
    byte count, in stream order (stream 0's windows, then stream 1's, ...: the text in order), the
    number of windows of each stream, and the coded bytes' information under M1 in bits.
    """
    data = np.frombuffer(data, dtype=np.uint8)
    n = len(data)
    pos = np.array([n * r // rows for r in range(rows)], dtype=np.int64)  # stream r: bytes pos[r] .. end[r]-1
    end = np.array([n * (r + 1) // rows for r in range(rows)], dtype=np.int64)
    padded = np.concatenate([data, np.zeros(cap, dtype=np.uint8)]).astype(np.int64)
    reach = np.arange(cap)
    windows_of = [[] for _ in range(rows)]
    information = 0.0
    m1.check_causal_exact(rows, cap)
    with tqdm(total=n, unit='B', unit_scale=True, desc='encoding', disable=not progress, mininterval=1.0) as bar:
        while (pos < end).any():
            avail = np.minimum(end - pos, cap)                      # bytes each stream may put in this window
            ahead = padded[pos[:, None] + reach] * (reach < avail[:, None])  # they, then zeros
            windows = np.concatenate([np.full((rows, 1), BOS), ahead[:, :-1]], axis=1)
            tables = m1.tables(windows)
            starts = np.take_along_axis(tables, ahead[..., None], -1)[..., 0]
            freqs = (np.take_along_axis(tables, ahead[..., None] + 1, -1)[..., 0] - starts).tolist()
            starts = starts.tolist()
            coded = 0
            for r in np.flatnonzero(avail).tolist():
                k = int(avail[r])
                value, count, info = encode_window(zip(starts[r][:k], freqs[r][:k]), bits)
                windows_of[r].append((value, count))
                pos[r] += count
                coded += count
                information += info
            bar.update(coded)
    values = [v for w in windows_of for v, _ in w]
    counts = [c for w in windows_of for _, c in w]
    return values, counts, [len(w) for w in windows_of], information


def decode_streams(m1, values, stream_windows, cap, bits, strict=True, progress=True):
    """
    The windows' bytes back from their values alone: a list of bytes per window (None where no text
    gives that value, if not strict). stream_windows: how many windows each row decodes, in order;
    the rows, cap and bits must be those of the encoding.
    """
    rows = len(stream_windows)
    first = np.concatenate([[0], np.cumsum(stream_windows)]).astype(np.int64).tolist()
    assert first[-1] == len(values), "the streams' window counts do not add up to the windows"
    nxt = first[:-1]                                  # the window each row decodes now
    decoders = [WindowDecoder(values[nxt[r]], bits) if nxt[r] < first[r + 1] else None for r in range(rows)]
    out = [None] * len(values)
    m1.check_causal_exact(rows, cap)
    with tqdm(unit='B', unit_scale=True, desc='decoding', disable=not progress, mininterval=1.0) as bar:
        while any(decoders):
            windows = np.zeros((rows, cap), dtype=np.int64)
            windows[:, 0] = BOS
            for r, d in enumerate(decoders):
                if d is not None and d.bytes:
                    windows[r, 1:1 + len(d.bytes)] = d.bytes
            tables = m1.tables(windows)
            for r, d in enumerate(decoders):
                if d is None:
                    continue
                d.next_byte(tables[r, len(d.bytes)].tolist())
                if not d.done and not d.invalid and len(d.bytes) < cap:
                    continue
                t = nxt[r]
                if d.done:
                    out[t] = bytes(d.bytes)
                    bar.update(len(d.bytes))
                elif strict:
                    raise UserError(f"window {t} (stream {r}) does not decode: the tokens are damaged (rebuild them), or "
                                    f"were made by another M1, or this machine's M1 computes other numbers (another "
                                    f"CPU or torch version); decode with the M1 and the machine that encoded them")
                nxt[r] += 1
                decoders[r] = WindowDecoder(values[nxt[r]], bits) if nxt[r] < first[r + 1] else None
    return out



def pack(values, bits, token_bits):
    """Window values -> tokens: each value's bits, most significant first, token_bits at a time."""
    per, mask = bits // token_bits, (1 << token_bits) - 1
    v = np.asarray(values, dtype=np.uint64)
    tokens = np.stack([(v >> np.uint64(token_bits * (per - 1 - i))) & np.uint64(mask) for i in range(per)], axis=1)
    return tokens.reshape(-1).astype(np.uint8 if token_bits == 8 else np.uint16)


def unpack(tokens, bits, token_bits):
    """Tokens -> window values (a trailing incomplete window is dropped)."""
    per = bits // token_bits
    t = np.asarray(tokens, dtype=np.uint64)
    t = t[:len(t) // per * per].reshape(-1, per)
    values = np.zeros(len(t), dtype=np.uint64)
    for i in range(per):
        values = (values << np.uint64(token_bits)) | t[:, i]
    return values.tolist()


class EqualInfo(Tokenizer):
    """Tokens of Equal-Info windows. Encoding and decoding go through M1, whose checkpoint meta.json
    names (path and hash); decode() turns any tokens into text (M2's samples), with U+FFFD for a window
    that no text gives."""
    name = "equal_info"

    @classmethod
    def facts(cls, m1=None, bits=16, token_bits=16, cap=16, rows=1, threads=1):
        return {"vocab_size": 1 << token_bits, "dtype": "uint8" if token_bits == 8 else "uint16", "modality": "text",
                "tokenizer": cls.name, "bits": bits, "token_bits": token_bits, "tokens_per_window": bits // token_bits,
                "cap": cap, "rows": rows, "threads": threads, "precision": PRECISION, "window_rule": "delay", "m1": m1}

    @classmethod
    def identity(cls, meta):
        """M1's weights (their hash) and the windows' shape; not where M1 was, nor the rows and threads of the coding."""
        out = {k: v for k, v in super().identity(meta).items() if k not in ("m1", "rows", "threads")}
        return dict(out, m1=(meta.get("m1") or {}).get("hash"))

    def __init__(self, meta=None):
        super().__init__(meta)
        self._m1 = None

    def byte_model(self, path=None):
        """The M1 these tokens were made with: at meta's path, or at `path`; another M1 is refused."""
        from equal_info.m1 import ByteModel  # torch and the model: only when coding
        want = self.meta.get("m1") or {}
        if self._m1 is None or (path and path != self._m1.path):
            if not path and not os.path.isfile(want.get("path", "")):
                raise UserError(f"M1, the model these tokens were made with, is not at {want.get('path')!r}, where "
                                f"meta.json says it was; put it back, or give its path (decode.py --m1=PATH)")
            m1 = ByteModel(path or want["path"], self.meta["threads"])
            if m1.hash != want.get("hash"):
                raise UserError(f"{m1.path} is not the M1 these tokens were made with (weights {m1.hash}, the tokens "
                                f"need {want.get('hash')}, from {want.get('path')}); give that checkpoint")
            self._m1 = m1
        return self._m1

    def encode(self, text):
        """A prompt -> tokens, coded as one stream."""
        m = self.meta
        values, _, _, _ = encode_streams(self.byte_model(), text.encode("utf-8"), 1, m["cap"], m["bits"], progress=False)
        return pack(values, m["bits"], m["token_bits"])

    def decode(self, ids):
        m = self.meta
        values = unpack(ids, m["bits"], m["token_bits"])
        windows = decode_streams(self.byte_model(), values, [len(values)], m["cap"], m["bits"], strict=False, progress=False)
        return b"".join(w if w is not None else "\ufffd".encode() for w in windows).decode("utf-8", errors="replace")

    def ready(self):
        self.byte_model()  # M1 found and checked now, not after the sampling

    def start(self):
        return list(self.meta["start"])

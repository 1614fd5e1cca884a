"""
Equal-Info Windows (Lester et al., "Training LLMs over Neurally Compressed Text", arXiv 2404.03626):
text compressed by an arithmetic coder that a small byte-level GPT drives (M1, equal_info/m1.py),
cut into windows that each compress to exactly `bits` bits, the coder and M1's context starting
afresh at every window (the arithmetic and the Delay rule: equal_info/windows.py). M2 trains on the
windows' bits, most significant first, in tokens of token_bits: b=16 is one token of 65,536 (v=65k)
or two of 256 (v=256).

Speed: a text is cut into `rows` contiguous streams, each coded window after window, up to `batch`
of them side by side: every step, M1 takes one byte of every row at once (equal_info/m1.py's cached
step) and the window arithmetic runs on all rows in numpy. A row whose stream ends takes the next
stream waiting. The encoder steps through each window's bytes until its value is settled: the next
byte does not fit, or the interval holds a single b-bit block, which every later byte that fits keeps
(equal_info/windows.py's settled(): no table needed for the byte after). It then starts the row again
where the window really ended (the Delay rule may end it earlier); the decoder steps through each
window's bytes once. M1's numbers do not depend on the batch
or the order (equal_info/m1.py), so the decoder need not repeat the encoder's schedule.

A dataset keeps, beside each split's tokens, the byte count of every window ({split}.bytes.bin:
bits per byte) and the window count of every stream ({split}.streams.bin: where each stream starts).
"""
import atexit
import multiprocessing
import os
import queue
import signal
import time

import numpy as np
import torch
from tqdm import tqdm

from errors import UserError
from tokens.base import Tokenizer
from equal_info.m1 import coding
from equal_info.windows import PRECISION, SCALE, narrow_rows, scaled, settled, shortest_codes

VERSION = 2     # of the coding: 1 was float M1 in one fixed batch shape and exact rational intervals
BATCH = 4096    # at most this many streams side by side in one process
PART = 1 << 19  # bytes of text a worker process is given at least: starting one costs seconds


class Rows:
    """A batch of rows, one stream each: numpy fields per row, one M1 cache row per row, and the table of
    each row's next byte. A row whose stream ends takes the next one waiting (the caller's take()); rows
    left without one are dropped once a quarter of the batch is idle (M1's numbers do not depend on it)."""

    def __init__(self, m1, size, **fields):
        self.m1, self.cache = m1, m1.new_cache(size)
        self.f = {name: np.zeros((size, *shape), dtype=np.int64) for name, shape in fields.items()}
        self.active = np.zeros(size, dtype=bool)
        self.tables = m1.restart(self.cache, torch.arange(size)).clone()

    def __getitem__(self, name):
        return self.f[name]

    def restart(self, rows):
        """These rows start a window: M1's context is BOS alone, their next byte's table the first one."""
        self.tables[torch.from_numpy(rows)] = self.m1.restart(self.cache, torch.from_numpy(rows))

    def step(self, x):
        """M1 reads byte x[r] of every active row r at its position: the tables of their next bytes."""
        idle = np.flatnonzero(~self.active)
        if len(idle) * 4 > len(self.active):  # drop the idle rows
            keep = np.flatnonzero(self.active)
            self.cache = self.cache.select(torch.from_numpy(keep))
            self.f = {name: a[keep] for name, a in self.f.items()}
            self.active, self.tables, x, idle = self.active[keep], self.tables[keep], x[keep], idle[:0]
        if len(idle):  # kept at their first position
            self.m1.restart(self.cache, torch.from_numpy(idle))
        self.tables = self.m1.step(self.cache, torch.from_numpy(x))


def stream_bounds(n, rows):
    """Stream r codes bytes n * r // rows .. n * (r + 1) // rows - 1."""
    return np.array([n * r // rows for r in range(rows + 1)], dtype=np.int64)


def encode_streams(m1, data, rows, bits, workers=1, progress=True):
    """
    data (bytes) cut into `rows` streams -> (values, counts, stream_windows, information): every window's
    b-bit value and byte count, in stream order (stream 0's windows, then stream 1's, ...: the text in
    order), the number of windows of each stream, and the coded bytes' information under M1 in bits.
    m1: an IntegerM1, whose cap is the windows'. workers: processes, each coding a run of streams.
    """
    bounds = stream_bounds(len(data), rows)
    parts = encode_parts(len(data), rows, workers)
    jobs = [(m1, data[bounds[a]:bounds[b]], bounds[a:b + 1] - bounds[a], bits) for a, b in parts]
    out = in_parts(encode_part, jobs, dict(total=len(data), unit='B', unit_scale=True, desc='encoding'), progress)
    values, counts, windows, information = zip(*out) if out else ((), (), (), ())
    return ([v for part in values for v in part], [c for part in counts for c in part],
            [w for part in windows for w in part], sum(information))


def decode_streams(m1, values, stream_windows, bits, strict=True, workers=1, progress=True):
    """
    The windows' bytes back from their values alone: a list of bytes per window (None where no text
    gives that value, if not strict). stream_windows: how many windows each stream holds, in order;
    bits must be the encoding's, and m1 an IntegerM1 of its cap. workers: processes, as encode_streams.
    """
    values, counts = np.asarray(values, dtype=np.int64), np.asarray(stream_windows, dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])
    assert first[-1] == len(values), "the streams' window counts do not add up to the windows"
    jobs = [(m1, values[first[a]:first[b]], counts[a:b], bits, strict, int(first[a]))
            for a, b in decode_parts(counts, workers)]
    out = in_parts(decode_part, jobs, dict(total=len(values), unit='window', desc='decoding'), progress)
    window_bytes = np.concatenate([w for w, _ in out]) if out else np.zeros((0, m1.cap), dtype=np.uint8)
    lengths = np.concatenate([n for _, n in out]) if out else np.zeros(0, dtype=np.int64)
    text, ends = window_bytes[np.arange(m1.cap) < lengths[:, None]].tobytes(), np.cumsum(lengths).tolist()
    return [text[e - n:e] if n else None for e, n in zip(ends, lengths.tolist())]


def cores():
    """The default number of worker processes: one per core. Beside another busy program on a 2-core machine
    two workers still beat one (66 against 60 kB/s compressing, 84 against 76 decompressing, measured)."""
    return os.cpu_count() or 1


def encode_parts(n, rows, workers):
    """The runs of streams that encode_streams gives its processes, for n bytes in `rows` streams."""
    return split_streams(np.diff(stream_bounds(n, rows)), workers)


def decode_parts(stream_windows, workers):
    """The runs of streams that decode_streams gives its processes (about 4 bytes a window: to share the work)."""
    return split_streams(np.asarray(stream_windows, dtype=np.int64) * 4, workers)


def split_streams(sizes, workers):
    """Consecutive runs of streams (a, b) of about equal size, one per worker, PART at least each."""
    n = int(max(1, min(workers, sizes.sum() // PART, len(sizes))))
    cuts = np.searchsorted(np.cumsum(sizes), sizes.sum() * np.arange(1, n) / n)
    edges = [0] + sorted(set(int(c) + 1 for c in cuts if 0 < c + 1 < len(sizes))) + [len(sizes)]
    return list(zip(edges[:-1], edges[1:]))


def in_parts(fn, jobs, bar, progress):
    """fn(*job, report) for each job: here if there is one, else each in a process of its own (one thread each:
    on a shared machine, threads that wait for each other at every operation are slower than processes
    that never do). report(n, text) moves the progress bar on by n, with `text` bytes of text (its speed)."""
    began, text = time.time(), [0]
    with tqdm(**bar, disable=not progress, mininterval=1.0) as bar:
        def report(n, b=0):
            text[0] += b
            if b:
                bar.set_postfix_str(f"{text[0] / max(time.time() - began, 1e-9) / 1e3:,.1f} kB/s", refresh=False)
            bar.update(n)
        if len(jobs) == 1:
            return [fn(*jobs[0], report)]
        pool, moved = worker_pool(len(jobs))
        while not moved.empty():  # what an earlier call's workers sent last
            moved.get()
        pending = [pool.apply_async(fn, job) for job in jobs]
        while not all(p.ready() for p in pending):
            try:
                report(*moved.get(timeout=0.5))
            except queue.Empty:
                pass
        out = [p.get() for p in pending]
        bar.update(bar.total - bar.n)  # what the workers had not sent yet
        return out


POOL = {}  # the worker processes: started once (about a second), kept until the program ends, grown if need be


def worker_pool(n):
    """At least n worker processes (a larger pool runs n jobs as well) and the queue their progress comes back by."""
    if POOL.get('size', 0) < n:
        if POOL:
            POOL['pool'].terminate()
        else:
            atexit.register(lambda: POOL['pool'].terminate())
        ctx = multiprocessing.get_context('spawn')  # not fork: a forked copy of torch's thread pools can hang
        moved = ctx.Queue()
        POOL.update(size=n, moved=moved, pool=ctx.Pool(n, initializer=worker_started, initargs=(moved,)))
    return POOL['pool'], POOL['moved']


def worker_started(moved):
    """In a worker process: one thread, Ctrl-C left to the parent, progress sent back through `moved`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    global report_moved
    report_moved = moved


def worker_report():
    """report(n, text) for a worker: what it did, sent to the parent about once a second."""
    done, sent = [0, 0], [time.time()]

    def report(n, text=0):
        done[0] += n
        done[1] += text
        if time.time() - sent[0] > 1:
            report_moved.put(tuple(done))
            done[:], sent[0] = [0, 0], time.time()
    return report


def encode_part(m1, data, bounds, bits, report=None):
    """encode_streams of the streams bounds[s] .. bounds[s + 1] of data, in this process."""
    report = report or worker_report()
    cap, data, rows = m1.cap, np.frombuffer(data, dtype=np.uint8).astype(np.int64), len(bounds) - 1
    waiting = [s for s in range(rows) if bounds[s] < bounds[s + 1]][::-1]  # taken from the end: in order
    ended = {k: [] for k in ('stream', 'value', 'count', 'width')}       # every window, as it ends
    with coding():
        b = Rows(m1, max(1, min(BATCH, len(waiting))), stream=(), pos=(), end=(), avail=(), j=(), low=(), width=(),
                 values=(cap,), widths=(cap,))

        def take(r):
            """Row r takes the next stream waiting, if any."""
            b.active[r] = bool(waiting)
            if waiting:
                s = waiting.pop()
                b['stream'][r], b['pos'][r], b['end'][r] = s, bounds[s], bounds[s + 1]

        def start(r):
            b['j'][r], b['low'][r], b['width'][r] = 0, 0, 1 << SCALE
            b['avail'][r] = np.minimum(cap, b['end'][r] - b['pos'][r])  # the most bytes the window may hold
            b.restart(r)

        for r in range(len(b.active)):
            take(r)
        start(np.flatnonzero(b.active))
        while b.active.any():
            r = np.flatnonzero(b.active)
            while len(r):  # the byte after each row's window so far: in the window, or the window ends there
                j, rt = b['j'][r], torch.from_numpy(r)
                x = torch.from_numpy(data[b['pos'][r] + j])
                low, width = narrow_rows(b['low'][r], b['width'][r], b.tables[rt, x].numpy(), b.tables[rt, x + 1].numpy())
                code = shortest_codes(low, width, bits)
                fits = code >= 0
                a = r[fits]
                b['low'][a], b['width'][a] = low[fits], width[fits]
                b['values'][a, j[fits]], b['widths'][a, j[fits]] = code[fits], width[fits]
                b['j'][a] += 1
                # windows that end: the byte did not fit, the cap is reached, or no later byte can change the value
                r = r[~fits | (b['j'][r] == b['avail'][r]) | (fits & settled(low, width, bits))]
                if len(r):
                    values, j = b['values'][r], b['j'][r]
                    value = values[np.arange(len(r)), j - 1]
                    n = (values == value[:, None]).argmax(1) + 1  # the Delay rule: the first prefix with that value
                    for k, v in zip(ended, (b['stream'][r], value, n, b['widths'][r, n - 1])):
                        ended[k].append(v)
                    b['pos'][r] += n
                    report(int(n.sum()))
                    for e in r[b['pos'][r] == b['end'][r]]:
                        take(e)
                    r = r[b.active[r]]
                    start(r)  # and read their first byte in this loop
            b.step(data[np.clip(b['pos'] + b['j'] - 1, 0, len(data) - 1)])  # each window's last byte (idle rows: any)
    stream, value, count, width = (np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for v in ended.values())
    order = np.argsort(stream, kind='stable')  # each stream's windows ended in order
    information = float(np.sum(SCALE - np.log2(width.astype(np.float64))))
    return value[order].tolist(), count[order].tolist(), np.bincount(stream, minlength=rows).tolist(), information


def decode_part(m1, values, stream_windows, bits, strict, offset, report=None):
    """decode_streams of these streams, in this process: (window bytes (windows, cap), lengths), length 0 where
    no text gives a window's value. offset: the index of the first window, for the error message."""
    report = report or worker_report()
    cap, first = m1.cap, np.concatenate([[0], np.cumsum(stream_windows)]).astype(np.int64)
    waiting = [s for s in range(len(stream_windows)) if stream_windows[s]][::-1]
    window_bytes = np.zeros((len(values), cap), dtype=np.uint8)
    lengths = np.zeros(len(values), dtype=np.int64)
    with coding():
        b = Rows(m1, max(1, min(BATCH, len(waiting))), t=(), last=(), value=(), j=(), low=(), width=(), bytes=(cap,))

        def take(r):
            b.active[r] = bool(waiting)
            if waiting:
                s = waiting.pop()
                b['t'][r], b['last'][r] = first[s], first[s + 1]

        def start(r):
            b['value'][r], b['j'][r], b['low'][r], b['width'][r] = values[b['t'][r]], 0, 0, 1 << SCALE
            b.restart(r)

        for r in range(len(b.active)):
            take(r)
        start(np.flatnonzero(b.active))
        while b.active.any():
            r = np.flatnonzero(b.active)
            while len(r):  # each row's next byte: the one whose interval holds the point value / 2^bits
                cum, low, width = b.tables[torch.from_numpy(r)], b['low'][r], b['width'][r]
                point = torch.from_numpy((b['value'][r] << (SCALE - bits)) - low)[:, None]
                x = (scaled(torch.from_numpy(width)[:, None], cum) <= point).sum(1) - 1
                lo, hi = cum.gather(1, x[:, None])[:, 0].numpy(), cum.gather(1, x[:, None] + 1)[:, 0].numpy()
                low, width = narrow_rows(low, width, lo, hi)
                b['low'][r], b['width'][r], b['bytes'][r, b['j'][r]] = low, width, x.numpy()
                b['j'][r] += 1
                code = shortest_codes(low, width, bits)
                done = code == b['value'][r]
                bad = ~done & ((code < 0) | (b['j'][r] == cap))  # narrower than b bits: no text gives the value
                if strict and bad.any():
                    raise UserError(f"window {offset + b['t'][r[bad][0]]} does not decode: the tokens are damaged "
                                    f"(rebuild them) or were made by another M1 or coder")
                ok, r = r[done], r[done | bad]  # windows that end
                if len(r):
                    window_bytes[b['t'][ok]], lengths[b['t'][ok]] = b['bytes'][ok], b['j'][ok]
                    report(len(r), int(b['j'][ok].sum()))
                    b['t'][r] += 1
                    for e in r[b['t'][r] == b['last'][r]]:
                        take(e)
                    r = r[b.active[r]]
                    start(r)  # and read their first byte in this loop
            b.step(b['bytes'][np.arange(len(b.active)), b['j'] - 1])  # each row's last byte (idle rows: any)
    return window_bytes, lengths


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
                "cap": cap, "rows": rows, "threads": threads, "precision": PRECISION, "window_rule": "delay",
                "coder": VERSION, "m1": m1}

    @classmethod
    def identity(cls, meta):
        """M1's weights (their hash) and the windows' shape; not where M1 was, nor the rows and threads of the coding."""
        out = {k: v for k, v in super().identity(meta).items() if k not in ("m1", "rows", "threads")}
        return dict(out, m1=(meta.get("m1") or {}).get("hash"))

    def __init__(self, meta=None):
        super().__init__(meta)
        self._m1 = None

    def check_windows(self):
        """Tokens made by another version of the coder, or a meta.json whose window fields were edited, are refused
        with the command that rebuilds the dataset (they would decode to other text, or fail half-way)."""
        m, rebuild = self.meta, self.meta.get("prepare") or "python prepare/equal_info.py"
        if m.get("coder") != VERSION:
            raise UserError(f"these Equal-Info tokens were made by coder version {m.get('coder', 1)}, which "
                            f"this code no longer decodes (version {VERSION}); rebuild the dataset with: {rebuild}")
        bits, token_bits = m.get("bits"), m.get("token_bits")
        if token_bits not in (8, 16) or type(bits) is not int or bits % token_bits:
            raise UserError(f"meta.json of these Equal-Info tokens has bits={bits!r}, token_bits={token_bits!r}, which "
                            f"are not windows of whole 8- or 16-bit tokens (was it edited?); rebuild the dataset with: "
                            f"{rebuild}")
        made = self.facts(m.get("m1"), bits, token_bits)  # the fields that follow from them, as prepare writes them
        wrong = [k for k in ("vocab_size", "dtype", "tokens_per_window", "precision", "window_rule") if m.get(k) != made[k]]
        wrong += [] if (m.get("m1") or {}).get("numbers") else ["m1 (its fingerprint)"]
        if wrong:
            raise UserError(f"meta.json of these Equal-Info tokens has {', '.join(wrong)} other than coder version "
                            f"{VERSION} writes for bits={bits}, token_bits={token_bits} (was it edited?); rebuild the "
                            f"dataset with: {rebuild}")

    def byte_model(self, path=None):
        """The M1 these tokens were made with, as the coder runs it (an IntegerM1): at meta's path, or at `path`;
        another M1 is refused."""
        from equal_info.m1 import ByteModel  # torch and the model: only when coding
        self.check_windows()
        want = self.meta.get("m1") or {}
        if self._m1 is None or (path and path != self._m1.path):
            if not path and not os.path.isfile(want.get("path", "")):
                raise UserError(f"M1, the model these tokens were made with, is not at {want.get('path')!r}, where "
                                f"meta.json says it was; put it back (decode.py also takes --m1=PATH)")
            m1 = ByteModel(path or want["path"])
            if m1.hash != want.get("hash"):
                raise UserError(f"{m1.path} is not the M1 these tokens were made with (weights {m1.hash}, the tokens "
                                f"need {want.get('hash')}, from {want.get('path')}); give that checkpoint")
            m1.check_numbers(self.meta["cap"], want.get("numbers"))
            self._m1 = m1
        return self._m1

    def encode(self, text):
        """A prompt -> tokens, coded as one stream."""
        m = self.meta
        coder = self.byte_model().coder(m["cap"])
        values, _, _, _ = encode_streams(coder, text.encode("utf-8"), 1, m["bits"], progress=False)
        return pack(values, m["bits"], m["token_bits"])

    def decode(self, ids):
        m = self.meta
        values = unpack(ids, m["bits"], m["token_bits"])
        coder = self.byte_model().coder(m["cap"])
        windows = decode_streams(coder, values, [len(values)], m["bits"], strict=False, progress=False)
        return b"".join(w if w is not None else "\ufffd".encode() for w in windows).decode("utf-8", errors="replace")

    def ready(self):
        self.byte_model()  # M1 found and checked now, not after the sampling

    def start(self):
        return list(self.meta["start"])

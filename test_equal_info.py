"""
Equal-Info Windows (equal_info/windows.py, equal_info/m1.py, equal_info/coder.py, prepare/equal_info.py,
decode.py) and the byte-level kinds beside them (bytes, SentencePiece): the window arithmetic by hand and
against its plain form, M1's tables bit-identical whatever the batch, the row, the threads and the
restarts, and close to the float model's; exact round trips on random bytes and on text, the uniform
model, bits per byte by hand, and the command line's one-line errors. Small models made here (one
trained for a few seconds); no network.
"""
import json
import math
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch

from checkpoints import save_checkpoint
from dataset import bytes_covered, read_meta, write_dataset
from metrics import bits_per_byte
from model import GPT, GPTConfig
from equal_info import coder as coding
from equal_info.m1 import ByteModel, coding as m1_coding
from tokens.bytes import BOS, Bytes
from equal_info.coder import EqualInfo, decode_streams, encode_streams, pack, unpack
from equal_info.windows import (PRECISION, SCALE, WindowDecoder, encode_window, narrow, narrow_rows, settled,
                                shortest_code, shortest_codes)

CAP, BITS = 12, 16


def ok(r):
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def one_line_error(r, *words):
    assert r.returncode == 1 and r.stderr.strip().startswith('error: ') and r.stderr.strip().count('\n') == 0 \
        and 'Traceback' not in r.stderr, r.stderr  # one line, not an empty one
    for w in words:
        assert w in r.stderr, r.stderr


def text_like(n, seed=0):
    """Text with the shape of prose: words, punctuation, newlines, and some multi-byte characters."""
    rng = np.random.default_rng(seed)
    words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'said', 'café', 'naïve', 'déjà', 'vu', 'x = 42;', '—', '“no”']
    out, size = [], 0
    while size < n:
        w = str(rng.choice(words)) + str(rng.choice([' ', ' ', ' ', ', ', '. ', '\n']))
        out.append(w)
        size += len(w.encode())
    return ''.join(out).encode()[:n].decode('utf-8', 'ignore').encode()  # whole characters only


def save_m1(path, model):
    save_checkpoint(str(path), {'model': model.state_dict(), 'model_args': asdict(model.config), 'meta': Bytes.facts()})
    return str(path)


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(block_size=16, vocab_size=257, n_layer=1, n_head=2, n_embd=32))


@pytest.fixture(scope='module')
def trained_m1(tmp_path_factory):
    """An M1 trained for a few seconds on windows of text_like(): it predicts well, so windows hold several bytes."""
    data = np.frombuffer(text_like(40_000, seed=1), dtype=np.uint8).astype(np.int64)
    model = tiny_gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine are many times slower
    try:
        train_steps(model, opt, data, rng)
    finally:
        torch.set_num_threads(threads)
    return save_m1(tmp_path_factory.mktemp('m1') / 'ckpt.pt', model)


def train_steps(model, opt, data, rng):
    for _ in range(150):
        starts = rng.integers(0, len(data) - 16, size=32)
        x = torch.from_numpy(np.stack([np.concatenate([[BOS], data[s:s + 15]]) for s in starts]))
        y = torch.from_numpy(np.stack([data[s:s + 16] for s in starts]))
        _, losses = model(x, y)
        loss = losses['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()


# ---------------------------------------------------------------- the window arithmetic

def test_shortest_code_by_hand():
    unit = 1 << SCALE  # [0, 1)
    # [1/4, 1/2) is the dyadic interval '01' itself: 2 bits, padded to 16
    assert shortest_code(unit // 4, unit // 4, 16) == 0b01 << 14
    # [0.300, 0.700): neither [1/4, 1/2) nor [1/2, 3/4) fits, [3/8, 1/2) = '011' does
    low = int(0.3 * unit)
    assert shortest_code(low, int(0.7 * unit) - low, 16) == 0b011 << 13
    # [5, 6) / 2^16 needs all 16 bits; [5, 6) / 2^17 does not fit 16 bits; nothing fits in an empty interval
    assert shortest_code(5 << (SCALE - 16), 1 << (SCALE - 16), 16) == 5
    assert shortest_code(5 << (SCALE - 17), 1 << (SCALE - 17), 16) is None and shortest_code(7, 0, 16) is None
    # an interval just short of containing [1/2, 1): [1/2, 3/4) still fits
    assert shortest_code(unit // 2 - 1, unit // 2, 16) == 0b10 << 14


def test_narrowing_tiles_the_interval():
    """The 256 bytes' intervals after any table tile the interval exactly, whatever its width."""
    rng = np.random.default_rng(0)
    for low, width in ((0, 1 << SCALE), (12345, 987654321), (1 << 40, (1 << 45) + 17)):
        cum = np.concatenate([[0], np.cumsum(rng.multinomial(1 << PRECISION - 8, np.ones(256) / 256) * 0 + 64)])
        cum = np.concatenate([[0], np.cumsum(1 + rng.multinomial((1 << PRECISION) - 256, rng.dirichlet(np.ones(256))))])
        parts = [narrow(low, width, int(cum[x]), int(cum[x + 1])) for x in range(256)]
        assert parts[0][0] == low and sum(w for _, w in parts) == width
        assert all(a[0] + a[1] == b[0] for a, b in zip(parts, parts[1:]))


def test_one_byte_always_fits_a_fresh_window():
    """The smallest frequency (1 of 2^14) anywhere in [0, 1) still fits 16 bits: every window holds a byte."""
    for start in range(1 << PRECISION):
        value, n, info = encode_window([(start, start + 1), (0, 1)], BITS)
        assert n == 1 and value >> BITS == 0 and info == PRECISION


def test_delay_rule_keeps_the_fewest_bytes_with_the_windows_bits():
    """Uniform bytes: 8 bits each, two fill a window, unless the second is byte 0, whose interval starts where
    the first byte's does: its bits equal one byte's padded with zeros, so the window keeps one byte."""
    uniform = [(x * 64, x * 64 + 64) for x in range(256)]
    assert encode_window([uniform[7], uniform[200], uniform[3]], BITS)[:2] == (7 * 256 + 200, 2)
    assert encode_window([uniform[7], uniform[0], uniform[3]], BITS)[:2] == (7 * 256, 1)


@pytest.mark.parametrize('bits', [16, 24, 48])
def test_rows_side_by_side_as_one_window_alone(bits):
    """narrow_rows and shortest_codes (numpy, all rows at once, the 76-bit products split) give exactly what
    narrow and shortest_code (Python integers) give, step after step, on peaked and flat tables."""
    rng = np.random.default_rng(bits)
    rows = 2000
    low, width = np.zeros(rows, dtype=np.int64), np.full(rows, 1 << SCALE, dtype=np.int64)
    plain = [(0, 1 << SCALE)] * rows
    for _ in range(12):
        peak = rng.choice([0.05, 1.0, 50.0], size=rows)[:, None]
        freq = 1 + np.stack([rng.multinomial((1 << PRECISION) - 256, rng.dirichlet(np.ones(256) * p[0])) for p in peak])
        cum = np.concatenate([np.zeros((rows, 1), dtype=np.int64), np.cumsum(freq, 1)], 1)
        x = rng.integers(0, 256, rows)
        lo, hi = cum[np.arange(rows), x], cum[np.arange(rows), x + 1]
        low, width = narrow_rows(low, width, lo, hi)
        plain = [narrow(a, w, int(s), int(e)) for (a, w), s, e in zip(plain, lo, hi)]
        assert [(int(a), int(w)) for a, w in zip(low, width)] == plain
        codes = shortest_codes(low, width, bits)
        assert [None if c < 0 else int(c) for c in codes] == [shortest_code(a, w, bits) for a, w in plain]


def test_a_settled_window_keeps_its_value():
    """settled(): an interval holding a single b-bit block gives every narrower interval inside it that still
    fits 16 bits the same value (so the encoder may stop there); one that holds two blocks need not."""
    rng = np.random.default_rng(3)
    block = 1 << (SCALE - BITS)
    low = rng.integers(0, (1 << SCALE) - 4 * block, 3000, dtype=np.int64)
    width = rng.integers(block, 4 * block, 3000, dtype=np.int64)
    calm = settled(low, width, BITS)
    assert calm.any() and (~calm).any()
    changed = set()
    for a, w, c in zip(low.tolist(), width.tolist(), calm.tolist()):
        value = shortest_code(a, w, BITS)
        for _ in range(20):  # narrower intervals inside, of any width that can still fit
            start = int(rng.integers(0, w - block + 1))
            inner = shortest_code(a + start, int(rng.integers(block, w - start + 1)), BITS)
            if c:
                assert inner is None or inner == value
            elif inner is not None and inner != value:
                changed.add(c)
    assert changed == {False}  # unsettled intervals do change value: the test can tell


# ---------------------------------------------------------------- M1 in integers: exact, and close to the float model

def windows_alone(m1, windows):
    """The tables of each window (a list of bytes), computed alone: a batch of one, a fresh cache."""
    out = []
    for w in windows:
        cache = m1.new_cache(1)
        tables = [m1.restart(cache, torch.tensor([0]))]
        tables += [m1.step(cache, torch.tensor([x])) for x in w[:-1]]
        out.append(torch.cat(tables))
    return out


def windows_side_by_side(m1, rows, seed, drop_at=None):
    """Rows that each code windows of random bytes and lengths one after another, restarting whenever theirs
    ends, so that every row is at its own position and slot; rows are dropped (Cache.select) at step drop_at.
    -> [(window bytes, its tables)]."""
    rng = np.random.default_rng(seed)
    cache = m1.new_cache(rows)
    keep = np.arange(rows)
    todo = [list(rng.integers(0, 256, rng.integers(1, CAP + 1))) for _ in range(rows)]
    tables = [[t] for t in m1.restart(cache, torch.arange(rows))]
    done = []
    for step in range(3 * CAP):
        if step == drop_at:
            keep = np.sort(rng.choice(len(keep), len(keep) // 2 + 1, replace=False))
            cache = cache.select(torch.from_numpy(keep))
            todo, tables = [todo[k] for k in keep], [tables[k] for k in keep]
        for r in range(len(todo)):
            while len(tables[r]) == len(todo[r]):  # the window is whole: the row starts another
                done.append((todo[r], torch.stack(tables[r])))
                todo[r] = list(rng.integers(0, 256, rng.integers(1, CAP + 1)))
                tables[r] = [m1.restart(cache, torch.tensor([r]))[0]]
        x = torch.tensor([todo[r][len(tables[r]) - 1] for r in range(len(todo))])
        for r, t in enumerate(m1.step(cache, x)):
            tables[r].append(t)
    return done


def test_tables_depend_on_a_windows_bytes_alone(trained_m1):
    """M1's tables for a window are bit-identical computed alone or beside other rows in batches of other
    shapes, at any row, restarted at any step (so in any cache slot), with one thread or two, after rows
    were dropped: the exactness the decoder relies on, whatever the encoder's and decoder's schedules."""
    m1 = ByteModel(trained_m1).coder(CAP)
    checked = 0
    for rows, threads, drop_at in ((1, 1, None), (5, 2, 7), (23, 1, 3)):
        with m1_coding(threads):
            done = windows_side_by_side(m1, rows, seed=rows, drop_at=drop_at)
            alone = windows_alone(m1, [w for w, _ in done])
        for (w, tables), ref in zip(done, alone):
            assert torch.equal(tables, ref), (rows, threads, w)
        checked += len(done)
    assert checked > 60


def test_integer_m1_is_close_to_the_float_model(trained_m1):
    """On text, the integer M1's tables cost at most 1 % more bits than the float model's own 14-bit tables, and
    a table is a valid one: 257 cumulative counts from 0 to 2^14, every byte at least 1."""
    bm = ByteModel(trained_m1)
    m1 = bm.coder(CAP)
    data = np.frombuffer(text_like(4000, seed=8), dtype=np.uint8).astype(np.int64)
    x = torch.from_numpy(data[:len(data) // CAP * CAP].reshape(-1, CAP))  # windows of CAP bytes, side by side
    with m1_coding():
        cache = m1.new_cache(len(x))
        tables = torch.stack([m1.restart(cache, torch.arange(len(x)))] + [m1.step(cache, x[:, j]) for j in range(CAP - 1)], 1)
        logits, _ = bm.model(torch.cat([torch.full((len(x), 1), BOS), x[:, :-1]], 1), x)
    freq = tables.diff(dim=-1)
    assert (tables[..., 0] == 0).all() and (tables[..., -1] == 1 << PRECISION).all() and freq.min() >= 1
    p = torch.softmax(logits[..., :256].double(), -1)  # the float model, in 14-bit tables as before
    ref = 1 + torch.floor(p * ((1 << PRECISION) - 256))
    ref.scatter_add_(-1, p.argmax(-1, keepdim=True), (1 << PRECISION) - ref.sum(-1, keepdim=True))
    bits = -torch.log2(freq.gather(-1, x[..., None]).double() / (1 << PRECISION)).mean()
    bits_float = -torch.log2(ref.gather(-1, x[..., None]) / (1 << PRECISION)).mean()
    assert bits_float < 6 and bits < bits_float * 1.01, (bits, bits_float)


def test_a_plain_gpt_only(tmp_path):
    """M1 with an option the integer form does not run (the wavelet, linear attention, ...) is one line."""
    model = GPT(GPTConfig(block_size=16, vocab_size=257, n_layer=1, n_head=2, n_embd=32, wavelet='haar'))
    from errors import UserError
    with pytest.raises(UserError, match="wavelet='haar'.*config/equal_info_m1.py"):
        ByteModel(save_m1(tmp_path / 'haar.pt', model)).coder(CAP)


# ---------------------------------------------------------------- exact round trips

def test_the_coder_makes_the_plain_windows(trained_m1):
    """encode_streams (rows side by side, numpy) cuts exactly the windows that encode_window (plain Python,
    one window at a time, the tables of each window computed alone) cuts, and WindowDecoder reads them back."""
    m1 = ByteModel(trained_m1).coder(CAP)
    data = text_like(700, seed=9)
    values, counts, streams, _ = encode_streams(m1, data, 3, BITS, progress=False)
    bounds, expected = coding.stream_bounds(len(data), 3), []
    for s in range(3):
        pos = bounds[s]
        while pos < bounds[s + 1]:
            ahead = list(data[pos:min(pos + CAP, bounds[s + 1])])
            cum = windows_alone(m1, [ahead])[0].tolist()
            value, n, _ = encode_window([(c[x], c[x + 1]) for c, x in zip(cum, ahead)], BITS)
            expected.append((value, n))
            reader = WindowDecoder(value, BITS)  # the plain decoder reads those n bytes back, and stops there
            assert [reader.next_byte(c) for c in cum[:n]] == ahead[:n] and reader.done
            pos += n
    assert list(zip(values, counts)) == expected and sum(streams) == len(values)


@pytest.mark.parametrize('kind', ['random', 'text'])
def test_round_trip_every_window(trained_m1, kind):
    m1 = ByteModel(trained_m1).coder(CAP)
    data = np.random.default_rng(3).integers(0, 256, 3000).astype(np.uint8).tobytes() if kind == 'random' \
        else text_like(6000, seed=2)
    values, counts, streams, info = encode_streams(m1, data, 8, BITS, progress=False)
    assert sum(counts) == len(data) and sum(streams) == len(values) and len(streams) == 8
    assert 1 <= min(counts) and max(counts) <= CAP and max(values) < 1 << BITS
    if kind == 'text':  # a model that predicts: windows hold several bytes
        assert len(data) / len(values) > 2.5 and info / len(data) < 5
    windows = decode_streams(m1, values, streams, BITS, progress=False)
    ends = np.cumsum(counts)
    assert all(w == data[e - n:e] for w, n, e in zip(windows, counts, ends))
    assert b''.join(windows) == data


def test_streams_in_parts_give_the_same_windows(trained_m1, monkeypatch):
    """Streams coded in parts (as worker processes would, here one after another) give the windows of one
    part, and decode from them; then once in two real processes."""
    m1 = ByteModel(trained_m1).coder(CAP)
    data = text_like(20_000, seed=6)
    one = encode_streams(m1, data, 6, BITS, progress=False)
    monkeypatch.setattr(coding, 'PART', 1000)
    monkeypatch.setattr(coding, 'in_parts', lambda fn, jobs, bar, progress: [fn(*job, lambda *a: 0) for job in jobs])
    parts = encode_streams(m1, data, 6, BITS, workers=3, progress=False)
    assert parts[:3] == one[:3] and parts[3] == pytest.approx(one[3])
    assert b''.join(decode_streams(m1, one[0], one[2], BITS, workers=4, progress=False)) == data
    monkeypatch.undo()
    monkeypatch.setattr(coding, 'PART', 1000)
    assert b''.join(decode_streams(m1, one[0], one[2], BITS, workers=2, progress=False)) == data


def test_uniform_model(tmp_path):
    """M1 = uniform: every byte costs 8 bits, a window holds 2 bytes (1 when the second is byte 0), and a
    uniform M2 over 16-bit tokens scores 16 bits / bytes per token."""
    model = tiny_gpt()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied with the embedding: every logit is 0
    m1 = ByteModel(save_m1(tmp_path / 'uniform.pt', model)).coder(CAP)
    assert torch.equal(m1.first, torch.arange(257).view(1, -1) * 64)
    data = np.random.default_rng(0).integers(1, 256, 2000).astype(np.uint8)
    data[::7] = 0
    values, counts, streams, info = encode_streams(m1, data.tobytes(), 4, BITS, progress=False)
    assert info == 8 * len(data) and set(counts) <= {1, 2}
    assert values[:3] == [int(data[0]) * 256 + int(data[1]), int(data[2]) * 256 + int(data[3]), int(data[4]) * 256 + int(data[5])]
    for v_bits in (16, 8):
        tokens = pack(values, BITS, v_bits)
        assert unpack(tokens, BITS, v_bits) == values
        meta = dict(EqualInfo.facts(bits=BITS, token_bits=v_bits), byte_counts={'dtype': 'uint8', 'tokens_per_count': BITS // v_bits})
        folder = str(tmp_path / f'u{v_bits}')
        write_dataset(folder, {'train': tokens, 'val': tokens}, meta,
                      {f'{s}.bytes.bin': np.array(counts, dtype=np.uint8) for s in ('train', 'val')})
        meta = read_meta(folder)
        T = 8
        offsets = np.arange(0, len(tokens) - T - 1, T)  # windows that tile the split
        covered_tokens = len(offsets) * T
        bpb = bits_per_byte(math.log(2 ** v_bits), covered_tokens, bytes_covered(folder, meta, 'val', offsets, T))
        exact = v_bits * covered_tokens / sum(np.repeat(counts, BITS // v_bits)[1:covered_tokens + 1] / (BITS // v_bits))
        assert bpb == pytest.approx(exact) and bpb == pytest.approx(BITS * len(values) / len(data), rel=0.02)


def test_bits_per_byte_by_hand(tmp_path):
    """Two tokens per window, windows of 3, 5, 4, 6 bytes: token p stands for counts[p // 2] / 2 bytes.
    Windows at offsets 0 and 2 of 4 targets: tokens 1..4 = 1.5+2.5+2.5+2 = 8.5 bytes, tokens 3..6 =
    2.5+2+2+3 = 9.5; 8 tokens at 1 bit each over 18 bytes = 4/9 bits per byte."""
    meta = dict(EqualInfo.facts(token_bits=8), byte_counts={'dtype': 'uint8', 'tokens_per_count': 2})
    ids = np.arange(8)
    write_dataset(str(tmp_path / 'd'), {'train': ids, 'val': ids}, meta,
                  {f'{s}.bytes.bin': np.array([3, 5, 4, 6], dtype=np.uint8) for s in ('train', 'val')})
    meta = read_meta(str(tmp_path / 'd'))
    covered = bytes_covered(str(tmp_path / 'd'), meta, 'val', [0, 2], 4)
    assert covered == pytest.approx(18) and bits_per_byte(math.log(2), 8, covered) == pytest.approx(4 / 9)
    assert bytes_covered(str(tmp_path / 'd'), dict(meta, byte_counts=None), 'val', [0, 2], 4) is None


def test_decoding_with_another_model_fails_loudly(trained_m1, tmp_path):
    """Tokens decoded through another M1 do not decode: a one-line error, or (not strict) other text."""
    m1 = ByteModel(trained_m1).coder(CAP)
    data = text_like(800, seed=5)
    values, _, streams, _ = encode_streams(m1, data, 2, BITS, progress=False)
    other = ByteModel(save_m1(tmp_path / 'other.pt', tiny_gpt(seed=7))).coder(CAP)
    from errors import UserError
    try:
        out = decode_streams(other, values, streams, BITS, progress=False)
        assert b''.join(out) != data
    except UserError as e:
        assert 'does not decode' in str(e)
    out = decode_streams(other, values, streams, BITS, strict=False, progress=False)
    assert b''.join(w or b'' for w in out) != data


# ---------------------------------------------------------------- the command line, end to end

def test_pipeline_end_to_end(trained_m1, tmp_path, run_script):
    """prepare (bytes, Equal-Info, regroup) -> train.py reports bits per byte -> sample.py prints text ->
    decode.py gives the exact bytes back, checked window by window."""
    (tmp_path / 'in.txt').write_bytes(text_like(30_000, seed=4))
    ok(run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', trained_m1, '--out', 'data/ei',
                   '--cap', str(CAP), '--rows', '16'], tmp_path))
    ok(run_script(['prepare/equal_info.py', '--regroup', 'data/ei', '--token_bits', '8', '--out', 'data/ei8'], tmp_path))
    meta, meta8 = read_meta(str(tmp_path / 'data/ei')), read_meta(str(tmp_path / 'data/ei8'))
    assert meta['vocab_size'] == 65536 and meta8['vocab_size'] == 256 and meta['m1']['hash'] == meta8['m1']['hash']
    assert meta8['tokens']['train'] == 2 * meta['tokens']['train'] and meta['bytes_per_token'] > 2.5
    r = ok(run_script(['train.py', '--dataset=ei8', '--out_dir=out', '--n_layer=1', '--n_head=2', '--n_embd=16',
                       '--block_size=16', '--batch_size=4', '--max_iters=2', '--eval_interval=2', '--eval_iters=1',
                       '--device=cpu'], tmp_path))
    assert 'bits/byte' in r.stdout
    r = ok(run_script(['sample.py', '--out_dir=out', '--max_new_tokens=20', '--device=cpu'], tmp_path))
    assert len(r.stdout.split('\n-----')[0]) > 0
    r = ok(run_script(['decode.py', '--data=data/ei', '--split=train', '--check=True', '--output=back.txt'], tmp_path))
    assert '0 of' in r.stdout and 'identical' in r.stdout
    original = (tmp_path / 'in.txt').read_text()
    assert (tmp_path / 'back.txt').read_bytes() == original[:len(original) - 2 * int(len(original) * 0.05)].encode()


def test_bad_inputs_are_one_line_errors(trained_m1, tmp_path, run_script):
    (tmp_path / 'empty.txt').write_text('')
    (tmp_path / 'in.txt').write_bytes(text_like(3000))
    r = run_script(['prepare/equal_info.py', '--input', 'empty.txt', '--m1', trained_m1, '--out', 'data/x'], tmp_path)
    one_line_error(r, 'no text')
    chars_model = GPT(GPTConfig(block_size=16, vocab_size=27, n_layer=1, n_head=2, n_embd=16))
    save_checkpoint(str(tmp_path / 'chars.pt'), {'model': chars_model.state_dict(), 'model_args': asdict(chars_model.config),
                                                 'meta': {'tokenizer': 'chars', 'vocab_size': 27}})
    r = run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', 'chars.pt', '--out', 'data/x'], tmp_path)
    one_line_error(r, 'not a byte-level model')
    r = run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', trained_m1, '--cap', '40', '--out', 'data/x'], tmp_path)
    one_line_error(r, 'block_size')
    ok(run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', trained_m1, '--cap', str(CAP), '--rows', '4',
                   '--out', 'data/ei'], tmp_path))
    save_m1(tmp_path / 'other.pt', tiny_gpt(seed=9))
    r = run_script(['decode.py', '--data=data/ei', '--m1=other.pt'], tmp_path)
    one_line_error(r, 'not the M1 these tokens were made with')
    assert not os.path.exists(tmp_path / 'data' / 'x')


def test_old_tokens_and_other_numbers_are_refused(trained_m1, tmp_path, run_script):
    """Tokens of coder version 1 (float M1, before this coder) are refused with the command that rebuilds them;
    a machine on which M1 gives other numbers (here: meta.json's fingerprint edited) is refused before decoding."""
    (tmp_path / 'in.txt').write_bytes(text_like(3000))
    ok(run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', trained_m1, '--cap', str(CAP), '--rows', '4',
                   '--out', 'data/ei'], tmp_path))
    meta_path = tmp_path / 'data' / 'ei' / 'meta.json'
    meta = json.loads(meta_path.read_text())
    old = {k: v for k, v in meta.items() if k != 'coder'}
    meta_path.write_text(json.dumps(dict(old, prepare='python prepare/equal_info.py --input in.txt --out data/ei')))
    r = run_script(['decode.py', '--data=data/ei', '--check=True'], tmp_path)
    one_line_error(r, 'coder version 1', 'rebuild the dataset with: python prepare/equal_info.py --input in.txt')
    meta_path.write_text(json.dumps(dict(meta, m1=dict(meta['m1'], numbers='0123456789abcdef'))))
    r = run_script(['decode.py', '--data=data/ei'], tmp_path)
    one_line_error(r, 'M1 gives other numbers on this machine')
    assert not r.stdout
    # window fields edited so that they no longer fit each other (a traceback half-way, before): refused first
    for edit, named in ((dict(token_bits=8), 'token_bits'), (dict(bits=24), 'bits'), (dict(precision=12), 'precision'),
                        (dict(m1={k: v for k, v in meta['m1'].items() if k != 'numbers'}), 'm1')):
        meta_path.write_text(json.dumps(dict(meta, **edit)))
        r = run_script(['decode.py', '--data=data/ei'], tmp_path)
        one_line_error(r, named, 'was it edited?', 'rebuild the dataset with: python prepare/equal_info.py')
        assert not r.stdout


def test_check_fails_on_damaged_byte_counts(trained_m1, tmp_path, run_script):
    """decode.py --check compares every window: byte counts moved between two windows (the text still whole, the
    bits per byte wrong) is NOT identical, exit 1; prepare and decode record the processes that really ran."""
    (tmp_path / 'in.txt').write_bytes(text_like(3000))
    ok(run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', trained_m1, '--cap', str(CAP), '--rows', '4',
                   '--out', 'data/ei', '--workers', '2'], tmp_path))
    meta = json.loads((tmp_path / 'data' / 'ei' / 'meta.json').read_text())
    assert meta['stats']['val']['workers'] == 1  # a small text runs in one process, whatever was asked
    counts = tmp_path / 'data' / 'ei' / 'val.bytes.bin'
    c = np.fromfile(counts, dtype=np.uint8)
    big = int(np.flatnonzero(c[:-1] > 1)[0])
    c[big] -= 1
    c[big + 1] += 1
    c.tofile(counts)
    r = run_script(['decode.py', '--data=data/ei', '--check=True', '--workers=2', '--report=r.json'], tmp_path)
    assert r.returncode == 1 and 'NOT identical' in r.stdout and '2 of' in r.stdout
    report = json.loads((tmp_path / 'r.json').read_text())
    assert report['identical'] is False and report['mismatched_windows'] == 2 and report['workers'] == 1


def test_found_from_any_folder_and_checked_before_decoding(trained_m1, tmp_path, run_script):
    """meta.json records M1 and the source text by their absolute paths, so decode.py works from another folder;
    a source that moved, or is no longer UTF-8 text, is a one-line error before the decoding."""
    (tmp_path / 'm1.pt').write_bytes(open(trained_m1, 'rb').read())
    (tmp_path / 'in.txt').write_bytes(text_like(3000))
    ok(run_script(['prepare/equal_info.py', '--input', 'in.txt', '--m1', 'm1.pt', '--cap', str(CAP), '--rows', '4',
                   '--out', 'data/ei'], tmp_path))
    meta = read_meta(str(tmp_path / 'data' / 'ei'))
    assert meta['m1']['path'] == str(tmp_path / 'm1.pt') and meta['source'] == str(tmp_path / 'in.txt')
    assert meta['m1']['params'] > 0 and meta['m1']['n_layer'] == 1
    (tmp_path / 'elsewhere').mkdir()
    r = ok(run_script(['decode.py', '--data=../data/ei', '--check=True', '--output=back.txt'], tmp_path / 'elsewhere'))
    assert '0 of' in r.stdout and 'identical' in r.stdout
    (tmp_path / 'in.txt').rename(tmp_path / 'moved.txt')
    r = run_script(['decode.py', '--data=data/ei', '--check=True'], tmp_path)
    one_line_error(r, 'the text this dataset was made from', "meta.json's source", 'which is not there')
    assert not r.stdout  # nothing decoded
    (tmp_path / 'in.txt').write_bytes(b'caf\xe9 ' * 600)  # another text there now, and not UTF-8
    r = run_script(['decode.py', '--data=data/ei', '--check=True'], tmp_path)
    one_line_error(r, 'not UTF-8 text (600 byte(s)')
    assert not r.stdout


# ---------------------------------------------------------------- the other byte-level kinds

def test_bytes_and_sentencepiece_datasets(tmp_path, run_script):
    (tmp_path / 'in.txt').write_bytes(text_like(40_000, seed=6))
    ok(run_script(['prepare/bytes.py', '--input', 'in.txt', '--out', 'data/b'], tmp_path))
    ok(run_script(['prepare/bytes.py', '--input', 'in.txt', '--out', 'data/m1', '--chunk', '8'], tmp_path))
    b, m1 = read_meta(str(tmp_path / 'data/b')), read_meta(str(tmp_path / 'data/m1'))
    assert sum(b['tokens'].values()) == 40_000 and sum(m1['tokens'].values()) == 40_000 + sum(
        math.ceil(n / 8) for n in b['tokens'].values())
    train = np.fromfile(tmp_path / 'data/m1/train.bin', dtype=np.uint16)
    assert train[0] == BOS and (train == BOS).sum() == math.ceil(b['tokens']['train'] / 8)
    assert Bytes().decode(Bytes().encode('déjà vu')) == 'déjà vu'
    pytest.importorskip('sentencepiece')
    ok(run_script(['prepare/spm.py', '--input', 'in.txt', '--out', 'data/spm', '--vocab', '300'], tmp_path))
    meta = read_meta(str(tmp_path / 'data/spm'))
    from dataset import tokenizer_for
    tok = tokenizer_for(meta)
    val = np.fromfile(tmp_path / 'data/spm/val.bin', dtype=np.uint16)
    original = (tmp_path / 'in.txt').read_text()
    n_val = int(len(original) * 0.05)
    assert tok.decode(val) == original[len(original) - 2 * n_val:len(original) - n_val]
    counts = np.fromfile(tmp_path / 'data/spm/val.bytes.bin', dtype=np.uint8)
    assert counts.sum() == len(tok.decode(val).encode()) and len(counts) == len(val)


def test_real_text_round_trip(trained_m1):
    """Real prose (Python's own docstrings, always here): exact, window by window."""
    from texts import collect
    data = collect().encode()[200_000:208_000]
    m1 = ByteModel(trained_m1).coder(CAP)
    values, counts, streams, _ = encode_streams(m1, data, 16, BITS, progress=False)
    assert b''.join(decode_streams(m1, values, streams, BITS, progress=False)) == data


def test_bench_prints_the_coders_speed(trained_m1, tmp_path, run_script):
    """bench.py --mode=coder: compression and decompression in kB/s, each round checked exact."""
    (tmp_path / 'in.txt').write_bytes(text_like(20_000, seed=3))
    r = ok(run_script(['bench.py', '--mode=coder', f'--m1={trained_m1}', '--input=in.txt', '--text_bytes=5000',
                       '--rounds=1', '--warmup=0', '--workers=1'], tmp_path))
    assert '| compress | 1 |' in r.stdout and '| decompress | 1 |' in r.stdout and 'load average' in r.stdout

"""
Equal-Info Windows (equal_info/windows.py, equal_info/m1.py, equal_info/coder.py, prepare/equal_info.py,
decode.py) and the byte-level kinds beside them (bytes, SentencePiece): exact round trips on random
bytes and on text, the window arithmetic by hand, the uniform model, bits per byte by hand, and the
command line's one-line errors. Small models made here (one trained for a few seconds); no network.
"""
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
from equal_info.m1 import ByteModel, fixed_threads, frequency_tables
from tokens.bytes import BOS, Bytes
from equal_info.coder import EqualInfo, decode_streams, encode_streams, pack, unpack
from equal_info.windows import PRECISION, encode_window, shortest_code

CAP, BITS = 12, 16


def ok(r):
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def one_line_error(r, *words):
    assert r.returncode == 1 and r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr, r.stderr
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
    with fixed_threads(1):  # two threads on a busy 2-core machine are many times slower
        train_steps(model, opt, data, rng)
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


# ---------------------------------------------------------------- one window, by hand

def test_shortest_code_by_hand():
    # [1/4, 1/2) is the dyadic interval '01' itself: 2 bits, padded to 16
    assert shortest_code(1, 1, 2, 16) == 0b01 << 14
    # [1229, 2867) / 2^12 = [0.300, 0.700): neither [1/4, 1/2) nor [1/2, 3/4) fits, [3/8, 1/2) = '011' does
    assert shortest_code(1229, 2867 - 1229, 12, 16) == 0b011 << 13
    # [5, 6) / 2^16: a 16-bit interval needs all 16 bits; [5, 6) / 2^17 does not fit 16 bits
    assert shortest_code(5, 1, 16, 16) == 5 and shortest_code(5, 1, 17, 16) is None
    # an interval just short of containing [1/2, 1) needs more bits: [0.5 - 2^-20, 1 - 2^-20)
    low, width = (1 << 19) - 1, 1 << 19
    assert shortest_code(low, width, 20, 16) == 0b10 << 14  # [1/2, 3/4) still fits


def test_one_byte_always_fits_a_fresh_window():
    """The smallest frequency (1 of 2^14) anywhere in [0, 1) still fits 16 bits: every window holds a byte."""
    for start in range(1 << PRECISION):
        value, n, info = encode_window([(start, 1), (0, 1)], BITS)
        assert n == 1 and value >> BITS == 0 and info == PRECISION
    assert encode_window([((1 << PRECISION) - 1, 1)], BITS)[1] == 1


def test_delay_rule_keeps_the_fewest_bytes_with_the_windows_bits():
    """Uniform bytes: 8 bits each, two fill a window, unless the second is byte 0, whose interval starts where
    the first byte's does: its bits equal one byte's padded with zeros, so the window keeps one byte."""
    uniform = [(x * 64, 64) for x in range(256)]
    assert encode_window([uniform[7], uniform[200], uniform[3]], BITS)[:2] == (7 * 256 + 200, 2)
    assert encode_window([uniform[7], uniform[0], uniform[3]], BITS)[:2] == (7 * 256, 1)


def test_frequency_tables_are_14_bit_and_every_byte_has_one():
    logits = torch.randn(4, 5, 257) * torch.tensor([0.1, 1.0, 10.0, 100.0]).view(4, 1, 1)
    cum = frequency_tables(logits).numpy()
    freq = np.diff(cum, axis=-1)
    assert (cum[..., 0] == 0).all() and (cum[..., -1] == 1 << PRECISION).all() and freq.min() >= 1
    assert (freq.argmax(-1) == logits[..., :256].argmax(-1).numpy()).all()


# ---------------------------------------------------------------- exact round trips through M1

@pytest.mark.parametrize('kind', ['random', 'text'])
def test_round_trip_every_window(trained_m1, kind):
    m1 = ByteModel(trained_m1)
    data = np.random.default_rng(3).integers(0, 256, 3000).astype(np.uint8).tobytes() if kind == 'random' \
        else text_like(6000, seed=2)
    values, counts, streams, info = encode_streams(m1, data, 8, CAP, BITS, progress=False)
    assert sum(counts) == len(data) and sum(streams) == len(values) and len(streams) == 8
    assert 1 <= min(counts) and max(counts) <= CAP and max(values) < 1 << BITS
    if kind == 'text':  # a model that predicts: windows hold several bytes
        assert len(data) / len(values) > 2.5 and info / len(data) < 5
    windows = decode_streams(m1, values, streams, CAP, BITS, progress=False)
    ends = np.cumsum(counts)
    assert all(w == data[e - n:e] for w, n, e in zip(windows, counts, ends))
    assert b''.join(windows) == data


def test_later_bytes_and_other_rows_do_not_change_a_position(trained_m1):
    """Determinism by construction: the same (rows, cap) call gives a row's position j the same integers
    whatever follows it and whatever the other rows hold."""
    m1 = ByteModel(trained_m1)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, CAP))
    a[:, 0] = BOS
    b = a.copy()
    b[:, 5:] = rng.integers(0, 256, (16, CAP - 5))
    b[1:] = rng.integers(0, 256, (15, CAP))
    b[1:, 0] = BOS
    ta, tb = m1.tables(a), m1.tables(b)
    assert np.array_equal(ta[0, :5], tb[0, :5]) and not np.array_equal(ta[0, 5:], tb[0, 5:])
    m1.check_causal_exact(16, CAP)


def test_uniform_model(tmp_path):
    """M1 = uniform: every byte costs 8 bits, a window holds 2 bytes (1 when the second is byte 0), and a
    uniform M2 over 16-bit tokens scores 16 bits / bytes per token."""
    model = tiny_gpt()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied with the embedding: every logit is 0
    m1 = ByteModel(save_m1(tmp_path / 'uniform.pt', model))
    data = np.random.default_rng(0).integers(1, 256, 2000).astype(np.uint8)
    data[::7] = 0
    values, counts, streams, info = encode_streams(m1, data.tobytes(), 4, CAP, BITS, progress=False)
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
    """Tokens decoded through another M1 do not decode (or the hash check refuses first)."""
    m1 = ByteModel(trained_m1)
    data = text_like(800, seed=5)
    values, _, streams, _ = encode_streams(m1, data, 2, CAP, BITS, progress=False)
    other = ByteModel(save_m1(tmp_path / 'other.pt', tiny_gpt(seed=7)))
    from errors import UserError
    try:
        out = decode_streams(other, values, streams, CAP, BITS, progress=False)
        assert b''.join(out) != data
    except UserError as e:
        assert 'another M1' in str(e)


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
    m1 = ByteModel(trained_m1)
    values, counts, streams, _ = encode_streams(m1, data, 16, CAP, BITS, progress=False)
    assert b''.join(decode_streams(m1, values, streams, CAP, BITS, progress=False)) == data

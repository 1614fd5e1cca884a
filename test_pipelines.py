"""
Text normalisation, and each modality end to end: prepare -> train.py -> sample.py -> a file a
person can read or hear. Tiny inputs made here; no network.
"""
import os
import subprocess
import sys
import wave
import zipfile

import numpy as np
import pytest

from dataset import DatasetError, read_meta
from prepare import pydocs, text8
from texts import split_by_fraction
from tokens import chars
TINY_MODEL = ['--n_layer=1', '--n_head=2', '--n_embd=16', '--block_size=32', '--batch_size=4', '--max_iters=4',
              '--eval_interval=2', '--eval_iters=1', '--device=cpu', '--wavelet=haar']


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


# ---------------------------------------------------------------- text8's alphabet

def test_normalize_like_text8():
    assert chars.normalize("Hello, World!") == "hello world "
    assert chars.normalize("In 1984 it cost $3.50") == "in one nine eight four it cost three five zero "
    assert chars.normalize("naïve café — déjà vu\n\tend") == "na ve caf d j vu end"
    assert chars.normalize("  many   spaces  ") == " many spaces "
    assert set(chars.normalize("Any ~ text @ 42 [x]")) <= set(chars.ALPHABET)


def test_encode_decode_round_trip():
    s = "the quick brown fox jumps over the lazy dog"
    ids = chars.encode(s)
    assert ids.dtype == np.uint8 and ids.max() == 26 and ids.min() == 0
    assert chars.decode(ids.tolist()) == s


def test_text8_inputs(tmp_path):
    (tmp_path / 'a.txt').write_text("First book.")
    (tmp_path / 'b.txt').write_text("Second book!")
    assert chars.normalize(text8.read_input(str(tmp_path))) == "first book second book "
    with zipfile.ZipFile(tmp_path / 'text8.zip', 'w') as z:
        z.writestr('text8', ' anarchism originated as')
    assert text8.read_input(str(tmp_path / 'text8.zip')) == ' anarchism originated as'
    (tmp_path / 'bad.zip').write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(DatasetError, match='zip'):
        text8.read_input(str(tmp_path / 'bad.zip'))
    with pytest.raises(DatasetError, match='does not exist'):
        text8.read_input(str(tmp_path / 'missing.txt'))


def test_text8_standard_split():
    """90 / 5 / 5 % in order is exactly text8's standard first 90M / next 5M / last 5M."""
    ids = np.zeros(100_000_000, dtype=np.uint8)
    ids[90_000_000] = 1
    splits = split_by_fraction(ids, 0.05, 0.05)
    assert [len(splits[k]) for k in ('train', 'val', 'test')] == [90_000_000, 5_000_000, 5_000_000]
    assert splits['val'][0] == 1


def test_text8_script_on_a_folder(tmp_path, run_script):
    books = tmp_path / 'books'
    books.mkdir()
    (books / 'one.txt').write_text("Call me Ishmael. " * 400)
    r = ok(run_script(['prepare/text8.py', '--input', str(books), '--out', 'data/books'], tmp_path))
    meta = read_meta(str(tmp_path / 'data' / 'books'))
    assert meta['vocab_size'] == 27 and meta['tokens']['train'] + meta['tokens']['val'] + meta['tokens']['test'] == 6400
    assert 'train 5,760 chars' in r.stdout


def test_text8_empty_input_is_a_one_line_error(tmp_path, run_script):
    (tmp_path / 'empty.txt').write_text(" !!! ... ")
    r = run_script(['prepare/text8.py', '--input', 'empty.txt'], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().count('\n') == 0 and 'no letters' in r.stderr
    assert not (tmp_path / 'data').exists() or not os.listdir(tmp_path / 'data')


def test_pydocs_builds_offline(tmp_path):
    meta = pydocs.build(str(tmp_path / 'pydocs'))
    assert meta['tokens']['train'] > 1_000_000 and meta['itos'] == chars.ALPHABET


# ---------------------------------------------------------------- end to end, per modality

def test_text_end_to_end(tmp_path, run_script):
    (tmp_path / 'in.txt').write_text("the cat sat on the mat. " * 300)
    ok(run_script(['prepare/text8.py', '--input', 'in.txt', '--out', 'data/cats'], tmp_path))
    ok(run_script(['train.py', '--dataset=cats', '--out_dir=out'] + TINY_MODEL, tmp_path))
    ok(run_script(['sample.py', '--out_dir=out', '--output=s.txt', '--max_new_tokens=50', '--device=cpu'], tmp_path))
    text = (tmp_path / 's.txt').read_text()
    assert len(text) == 51 and set(text) <= set(chars.ALPHABET)


def test_audio_end_to_end(tmp_path, run_script):
    pytest.importorskip('scipy')
    from scipy.io import wavfile
    (tmp_path / 'wavs').mkdir()
    t = np.arange(44100 * 2) / 44100
    for i, f in enumerate((220, 330, 440)):
        stereo = 0.3 * np.stack([np.sin(2 * np.pi * f * t), np.sin(2 * np.pi * f * 1.01 * t)], 1)
        wavfile.write(str(tmp_path / 'wavs' / f'clip{i}.wav'), 44100, stereo.astype(np.float32))
    ok(run_script(['prepare/youtubemix.py', '--input', 'wavs', '--out', 'data/tones'], tmp_path))
    ok(run_script(['train.py', '--dataset=tones', '--out_dir=out'] + TINY_MODEL, tmp_path))
    ok(run_script(['sample.py', '--out_dir=out', '--seconds=0.05', '--output=s.wav', '--device=cpu'], tmp_path))
    with wave.open(str(tmp_path / 's.wav')) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() == 1 + 800  # the one-sample prompt and 0.05 s
    # a .wav prompt is continued
    ok(run_script(['sample.py', '--out_dir=out', '--start=FILE:s.wav', '--max_new_tokens=10',
         '--output=t.wav', '--device=cpu'], tmp_path))
    with wave.open(str(tmp_path / 't.wav')) as w:
        assert w.getnframes() == 801 + 10
    # the Fourier head on the same data, and the predicted PMFs of both heads drawn side by side
    ok(run_script(['train.py', '--dataset=tones', '--out_dir=fourier', '--head=fourier', '--fourier_freqs=8'] + TINY_MODEL,
                  tmp_path))
    log = (tmp_path / 'fourier' / 'log.jsonl').read_text()
    assert '"val_smoothness"' in log and '"val_regulariser"' in log
    pytest.importorskip('matplotlib')
    r = ok(run_script(['plot_pmfs.py', '--runs=out,fourier', '--rows=2', '--output=p.png'], tmp_path))
    assert (tmp_path / 'p.png').stat().st_size > 1000 and r.stdout.count('mean smoothness') == 2


def test_music_end_to_end(tmp_path, run_script):
    mido = pytest.importorskip('mido')
    from tokens.midi import read_notes
    (tmp_path / 'midi').mkdir()
    for i in range(4):
        mid = mido.MidiFile(ticks_per_beat=480)
        track = mido.MidiTrack()
        for n in range(40):
            pitch = 60 + (n * (i + 2)) % 12
            track.append(mido.Message('note_on', note=pitch, velocity=64 + n % 40, time=0 if n == 0 else 120))
            track.append(mido.Message('note_off', note=pitch, velocity=0, time=100))
        mid.tracks.append(track)
        mid.save(str(tmp_path / 'midi' / f'p{i}.mid'))
    ok(run_script(['prepare/maestro.py', '--input', 'midi', '--out', 'data/tunes'], tmp_path))
    assert read_meta(str(tmp_path / 'data' / 'tunes'))['dtype'] == 'uint16'
    ok(run_script(['train.py', '--dataset=tunes', '--out_dir=out'] + TINY_MODEL, tmp_path))
    ok(run_script(['sample.py', '--out_dir=out', '--max_new_tokens=200', '--output=s.mid', '--device=cpu'], tmp_path))
    sample = mido.MidiFile(str(tmp_path / 's.mid'))  # read back: notes, over some time
    notes = read_notes(sample)
    assert sample.length > 0 and len(notes) > 0 and max(end for *_, end in notes) > 0
    assert sum(m.type == 'note_on' and m.velocity > 0 for m in sample) == len(notes)
    ok(run_script(['sample.py', '--out_dir=out', '--start=FILE:midi/p0.mid', '--max_new_tokens=20',
         '--output=t.mid', '--device=cpu'], tmp_path))
    # the output starts with the prompt: p0's melody, 60 + 2n mod 12, a note every 220 ticks of 480 a beat at
    # 120 bpm (0.229 s), each on the nearest 10 ms step
    notes = read_notes(mido.MidiFile(str(tmp_path / 't.mid')))
    assert [n[0] for n in notes[:39]] == [60 + (2 * n) % 12 for n in range(39)]
    assert all(abs(note[2] - n * 220 / 480 / 2) <= 0.0051 for n, note in enumerate(notes[:39]))  # half a step

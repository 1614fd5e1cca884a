"""
Tests of the audio, music and BPE prepare scripts, on tiny inputs the tests make themselves.
No network: downloads are tested against a local HTTP server, Hugging Face and tiktoken are faked.
    python -m pytest -q test_prepare.py
"""
import http.server
import importlib
import json
import os
import subprocess
import sys
import threading
import types
import wave
import zipfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, REPO)
import dataset  # noqa: E402
from dataset import DatasetError
from errors import main_guard  # noqa: E402
from prepare import bpe, common, maestro, youtubemix  # noqa: E402
import texts  # noqa: E402
from tokens import gpt2, midi, mulaw  # noqa: E402

REAL_DATA = os.environ.get("WAVELETGPT_REAL_DATA", "")  # a folder with midi/ and audio/ of real files, if you have one


def optional(name):
    """An optional package (README, Install), or None: the tests that need it skip without it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


mido = optional("mido")
wavfile = optional("scipy.io.wavfile")
needs_mido = pytest.mark.skipif(mido is None, reason="needs mido (optional, for MIDI)")
needs_scipy = pytest.mark.skipif(wavfile is None, reason="needs scipy (optional, for audio)")


def run_prepare(name, *args, env=None):
    """Run prepare/<name>.py in a subprocess; (exit code, stdout, stderr)."""
    r = subprocess.run([sys.executable, os.path.join(REPO, "prepare", f"{name}.py"), *args],
                       capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)
    return r.returncode, r.stdout, r.stderr


def assert_clean_failure(code, err, out_dir):
    """Exit 1, a one-line message, and nothing half-written next to out_dir."""
    assert code == 1
    lines = err.strip().splitlines()  # progress bars and warnings may come first
    assert lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert not os.path.exists(out_dir)
    assert_no_leftovers(os.path.dirname(out_dir))


def assert_no_leftovers(folder):
    assert not [f for f in os.listdir(folder) if ".tmp-" in f or ".old-" in f or f.endswith(".part")]


def load_dataset(out_dir):
    meta = dataset.read_meta(out_dir)
    dtype = dataset.DTYPES[meta["dtype"]]
    return meta, {s: np.fromfile(os.path.join(out_dir, f"{s}.bin"), dtype=dtype) for s in meta["tokens"]}


def assert_file_split(meta):
    files = meta["files"]
    assert files["train"] and files["val"]
    for a in files:
        for b in files:
            assert a == b or not set(files[a]) & set(files[b]), f"{a} and {b} share files"


# ---------------------------------------------------------------- mu-law, WAV in and out

@needs_scipy
def test_mulaw_endpoints_and_monotonic():
    enc, dec = mulaw.mulaw_encode, mulaw.mulaw_decode
    assert enc([-1.0, 0.0, 1.0]).tolist() == [0, 128, 255]
    assert enc([-7.0, 7.0]).tolist() == [0, 255]  # out of range clips
    x = np.linspace(-1, 1, 200_001)
    ids = enc(x)
    assert ids.dtype == np.uint8 and np.all(np.diff(ids.astype(int)) >= 0) and len(set(ids.tolist())) == 256
    levels = dec(np.arange(256))
    assert np.all(np.diff(levels) > 0) and levels[0] == pytest.approx(-1) and levels[-1] == pytest.approx(1)
    assert enc(levels).tolist() == list(range(256))


@needs_scipy
def test_mulaw_round_trip_error_bound():
    x = np.random.default_rng(0).uniform(-1, 1, 100_000) ** 3  # many quiet samples, as in music
    err = np.abs(mulaw.mulaw_decode(mulaw.mulaw_encode(x)) - x)
    # rounding moves the companded value by at most half a step (1/255), which scales |x| + 1/mu
    # by at most 256 ** (1/255): a relative error of 2.2%, and 1e-4 absolute near silence
    assert np.all(err <= (np.abs(x) + 1 / 255) * (256 ** (1 / 255) - 1) + 1e-6)
    assert err[np.abs(x) < 0.01].max() < 4e-4


def write_wav_file(path, x, rate, kind="int16"):
    """float samples (n,) or (n, channels) -> a WAV of the given sample format."""
    if kind == "float32":
        wavfile.write(path, rate, x.astype(np.float32))
        return
    if kind == "uint8":
        wavfile.write(path, rate, np.clip(np.rint(x * 127 + 128), 0, 255).astype(np.uint8))
        return
    width = {"int16": 2, "int24": 3}[kind]
    ints = np.clip(np.rint(x * (2 ** (8 * width - 1) - 1)), -2 ** (8 * width - 1), 2 ** (8 * width - 1) - 1)
    raw = ints.astype("<i4").reshape(-1, 1).view(np.uint8)[:, :width].tobytes()  # little-endian low bytes
    with wave.open(path, "wb") as w:
        w.setnchannels(1 if x.ndim == 1 else x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def sine(freq, rate, n, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)


@needs_scipy
def test_44k_stereo_float_becomes_16k_mono_with_the_same_pitch(tmp_path):
    n = 50_000  # 1.13 s; 50000 * 16000 / 44100 = 18140.6 samples at 16 kHz
    left = sine(440, 44100, n)
    path = str(tmp_path / "a.wav")
    write_wav_file(path, np.stack([left, 0.6 * left], axis=1), 44100, "float32")
    ids = mulaw.encode_file(path)
    assert ids.dtype == np.uint8 and abs(len(ids) - n * 16000 / 44100) <= 1
    x = mulaw.mulaw_decode(ids)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert abs(np.argmax(spectrum) * 16000 / len(x) - 440) < 2
    assert np.sqrt(np.mean(x[1000:-1000] ** 2)) == pytest.approx(0.8 * 0.5 / np.sqrt(2), rel=0.03)  # mono = mean


@needs_scipy
def test_resampling_filters_out_what_16k_cannot_hold():
    x = sine(12_000, 44100, 44100)  # above 8 kHz: dropping samples would alias it to 4 kHz at full level
    y = mulaw.resample_to_16k(x, 44100)
    assert np.sqrt(np.mean(y[500:-500] ** 2)) < 0.01 * np.sqrt(np.mean(x ** 2))
    assert mulaw.resample_to_16k(x, 16000) is x


@needs_scipy
@pytest.mark.parametrize("kind,rate,channels", [("int16", 16000, 1), ("int24", 48000, 2),
                                                 ("uint8", 8000, 1), ("float32", 22050, 2)])
@needs_scipy
def test_read_wav_formats(tmp_path, kind, rate, channels):
    x = sine(300, rate, rate // 4, 0.7)
    path = str(tmp_path / f"{kind}.wav")
    write_wav_file(path, x if channels == 1 else np.stack([x] * channels, axis=1), rate, kind)
    y, got_rate = mulaw.read_wav(path)
    assert got_rate == rate and y.ndim == 1 and len(y) == len(x)
    assert np.abs(y - x).max() < {"uint8": 0.01}.get(kind, 1e-4)


@needs_scipy
def test_write_wav_is_16k_mono_16bit_and_round_trips(tmp_path):
    ids = np.tile(np.arange(256, dtype=np.uint8), 20)
    path = str(tmp_path / "out.wav")
    mulaw.write_wav(ids, path)
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, len(ids))
    assert mulaw.encode_file(path).tolist() == ids.tolist()  # a generated .wav is a faithful prompt
    assert os.listdir(tmp_path) == ["out.wav"]


# ---------------------------------------------------------------- youtubemix.py end to end

@needs_scipy
def test_split_files_is_the_standard_youtubemix_split():
    names = [f"out{i}.wav" for i in np.random.default_rng(0).permutation(241)]
    files = youtubemix.split_files(sorted(names, key=youtubemix.natural_key))
    assert files["train"] == [f"out{i}.wav" for i in range(212)]
    assert files["val"] == [f"out{i}.wav" for i in range(212, 226)]
    assert files["test"] == [f"out{i}.wav" for i in range(226, 241)]
    for n in range(3, 80):
        files = youtubemix.split_files(list(range(n)))
        assert all(files.values()) and sum(files.values(), []) == list(range(n))


def make_audio_folder(folder, names):
    os.makedirs(folder, exist_ok=True)
    formats = [(44100, 2, "int16"), (22050, 1, "float32"), (16000, 1, "int16"), (48000, 2, "int24")]
    for i, name in enumerate(names):
        rate, channels, kind = formats[i % len(formats)]
        x = sine(220 * (i + 1), rate, rate // 5)
        write_wav_file(os.path.join(folder, name), x if channels == 1 else np.stack([x, x], 1), rate, kind)


@needs_scipy
def test_youtubemix_folder_with_bad_files(tmp_path):
    src, out = str(tmp_path / "in"), str(tmp_path / "ytm")
    make_audio_folder(src, ["clip10.wav", "clip2.wav", "clip1.wav", "clip3.wav"])
    with open(os.path.join(src, "junk.wav"), "w") as f:
        f.write("not audio at all\n" * 20)
    open(os.path.join(src, "empty.wav"), "w").close()  # zero bytes
    write_wav_file(os.path.join(src, "silent.wav"), np.zeros(0), 16000)  # a header and zero samples
    with open(os.path.join(src, "song.mp3"), "wb") as f:
        f.write(b"ID3" + bytes(100))
    with open(os.path.join(src, "notes.txt"), "w") as f:
        f.write("recorded in 2024\n")
    code, stdout, err = run_prepare("youtubemix", "--input", src, "--out", out)
    assert code == 0, err
    assert "skipped 4 " in err and "4 files used, 4 skipped, 1 non-audio" in stdout
    meta, splits = load_dataset(out)
    assert (meta["modality"], meta["tokenizer"], meta["sample_rate"], meta["mu"]) == ("audio", "mulaw", 16000, 255)
    assert meta["files"] == {"train": ["clip1.wav", "clip2.wav"], "val": ["clip3.wav"], "test": ["clip10.wav"]}
    assert_file_split(meta)
    for split, names in meta["files"].items():
        expect = np.concatenate([mulaw.encode_file(os.path.join(src, n)) for n in names])
        assert splits[split].tolist() == expect.tolist()
    assert abs(meta["tokens"]["test"] - 16000 / 5) <= 1  # 0.2 s of audio
    assert meta["prepare"] == f"python prepare/youtubemix.py --input {src} --out {out}"


@needs_scipy
def test_youtubemix_two_files_cut_in_time(tmp_path):
    src, out = str(tmp_path / "in"), str(tmp_path / "ytm")
    make_audio_folder(src, ["a.wav", "b.wav"])
    code, _, err = run_prepare("youtubemix", "--input", src, "--out", out)
    assert code == 0, err
    meta, splits = load_dataset(out)
    assert meta["files"]["train"] == meta["files"]["val"] == ["a.wav", "b.wav"] and "cut in time" in meta["split_rule"]
    total = sum(len(mulaw.encode_file(os.path.join(src, n))) for n in ("a.wav", "b.wav"))
    assert sum(meta["tokens"].values()) == total and meta["tokens"]["val"] > 0
    assert meta["tokens"]["train"] == pytest.approx(0.9 * total, abs=2)


@needs_scipy
@pytest.mark.parametrize("contents", [{}, {"junk.wav": b"nonsense" * 10, "empty.wav": b"", "x.flac": b"fLaC"}])
def test_youtubemix_no_usable_file_is_a_one_line_error(tmp_path, contents):
    src, out = tmp_path / "in", str(tmp_path / "ytm")
    src.mkdir()
    for name, data in contents.items():
        (src / name).write_bytes(data)
    code, _, err = run_prepare("youtubemix", "--input", str(src), "--out", out)
    assert_clean_failure(code, err, out)


@needs_scipy
def test_youtubemix_download_path_with_a_fake_hugging_face(tmp_path, monkeypatch, capsys):
    clips = tmp_path / "made"
    make_audio_folder(str(clips), [f"out{i}.wav" for i in range(4)])

    def snapshot_download(repo_id, repo_type, local_dir):
        assert (repo_id, repo_type) == ("krandiash/youtubemix", "dataset")
        os.makedirs(local_dir, exist_ok=True)
        with zipfile.ZipFile(os.path.join(local_dir, "youtube_mix.zip"), "w") as z:
            for name in sorted(os.listdir(clips)):
                z.write(clips / name, f"youtube_mix/{name}")
        return local_dir

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    out = str(tmp_path / "ytm")
    monkeypatch.setattr(sys, "argv", ["youtubemix.py", "--out", out, "--cache", str(tmp_path / "dl")])
    youtubemix.main()
    meta = dataset.read_meta(out)
    assert meta["files"]["test"] == ["youtube_mix/youtube_mix/out3.wav"] and meta["source"].endswith("krandiash/youtubemix")

    def refused(**kwargs):
        raise OSError("401 Client Error\nCannot access gated repo")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=refused))
    with pytest.raises(DatasetError, match="accept its terms.*--input") as e:
        youtubemix.download_youtubemix(str(tmp_path / "dl2"))
    assert "\n" not in str(e.value)


@needs_scipy
def test_failed_or_interrupted_rebuild_keeps_the_old_dataset(tmp_path, monkeypatch):
    src, out = str(tmp_path / "in"), str(tmp_path / "ytm")
    make_audio_folder(src, ["a.wav", "b.wav", "c.wav"])
    assert run_prepare("youtubemix", "--input", src, "--out", out)[0] == 0
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    os.makedirs(tmp_path / "empty")
    code, _, err = run_prepare("youtubemix", "--input", str(tmp_path / "empty"), "--out", out)
    assert code == 1 and err.startswith("error: no .wav files")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset.json, "dump", interrupt)  # Ctrl-C while meta.json is being written
    monkeypatch.setattr(sys, "argv", ["youtubemix.py", "--input", src, "--out", out])
    with pytest.raises(SystemExit) as e:
        main_guard(youtubemix.main)
    assert e.value.code == 130
    assert {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)} == before
    assert_no_leftovers(str(tmp_path))


# ---------------------------------------------------------------- MIDI events

ON, OFF, SHIFT, VEL = midi.NOTE_ON, midi.NOTE_OFF, midi.TIME_SHIFT, midi.VELOCITY


def save_midi(path, tracks, ticks_per_beat=480):
    """tracks: lists of (absolute tick, mido message) -> a type 1 Standard MIDI File."""
    smf = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track, now = mido.MidiTrack(), 0
        for tick, msg in sorted(events, key=lambda e: e[0]):  # stable: ties keep their order
            track.append(msg.copy(time=tick - now))
            now = tick
        smf.tracks.append(track)
    smf.save(path)
    return path


def note(tick, pitch, velocity=80, channel=0, off=False):
    kind = "note_off" if off else "note_on"
    return tick, mido.Message(kind, note=pitch, velocity=0 if off else velocity, channel=channel)


def pedal(tick, value, channel=0):
    return tick, mido.Message("control_change", control=64, value=value, channel=channel)


def tempo(tick, bpm):
    return tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


@needs_mido
def test_midi_tokens_by_hand(tmp_path):
    """Two tracks, a tempo change, the pedal, a drum note, note-on velocity 0 as note-off."""
    tempo_track = [tempo(0, 120), tempo(960, 240)]  # 480 ticks a beat: 0.5 s a beat, from 1 s on 0.25 s
    piano = [note(0, 60, 80), pedal(240, 127), note(480, 60, off=True), pedal(1440, 0)]  # held to 1.25 s
    other = [note(960, 64, 100, channel=1), note(1920, 64, 0, channel=1),  # 1.0 s to 1.5 s
             note(0, 36, 120, channel=9), note(200, 36, off=True, channel=9)]  # drums: left out
    path = save_midi(str(tmp_path / "a.mid"), [tempo_track, piano, other])
    assert midi.encode_file(path).tolist() == [
        VEL + 19, ON + 60, SHIFT + 99, VEL + 24, ON + 64, SHIFT + 24, OFF + 60, SHIFT + 24, OFF + 64]


@needs_mido
def test_midi_restrike_under_pedal_long_gaps_short_notes_and_leading_silence(tmp_path):
    events = [pedal(0, 100), note(1500, 62), note(1550, 62, off=True), note(1650, 62), note(1700, 62, off=True),
              pedal(2000, 10), note(3500, 70, 9), note(3500, 70, off=True)]  # 1 tick = 1 ms below
    path = save_midi(str(tmp_path / "b.mid"), [[tempo(0, 120)] + events], ticks_per_beat=500)
    assert midi.encode_file(path).tolist() == [
        VEL + 19, ON + 62, SHIFT + 14, OFF + 62, ON + 62, SHIFT + 34, OFF + 62,  # re-struck after 150 ms
        SHIFT + 99, SHIFT + 49, VEL + 2, ON + 70, SHIFT + 0, OFF + 70]  # 1.5 s gap; a 0 ms note lasts 10 ms


def random_midi(path, rng):
    """Several tracks and channels, tempo changes, pedal, overlapping notes of one pitch, zero-length notes."""
    tempos = [tempo(0, rng.integers(40, 200))] + [tempo(int(t), rng.integers(40, 200)) for t in rng.integers(0, 9000, 3)]
    tracks = [tempos]
    channels = list(rng.choice([0, 1, 2], size=rng.integers(1, 4), replace=False)) + [9] * (rng.random() < 0.3)
    for channel in map(int, channels):
        events = [pedal(int(t), int(rng.integers(0, 128)), channel) for t in rng.integers(0, 9000, 8)]
        for start, length, pitch in zip(rng.integers(0, 9000, 40), rng.integers(0, 700, 40), rng.integers(55, 66, 40)):
            events += [note(int(start), int(pitch), int(rng.integers(1, 128)), channel),
                       note(int(start + length), int(pitch), off=True, channel=channel)]
            if rng.random() < 0.3:  # note-on with velocity 0, the running-status way to end a note
                events[-1] = note(int(start + length), int(pitch), 0, channel)
        tracks.append(events)
    return save_midi(path, tracks, ticks_per_beat=int(rng.choice([96, 384, 480, 960])))


@needs_mido
def test_midi_round_trip_tokens_to_midi_to_tokens(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        ids = midi.encode_file(random_midi(str(tmp_path / f"r{i}.mid"), rng))
        assert len(ids) > 100 and ids.max() < midi.VOCAB_SIZE
        out = midi.write_midi(ids, str(tmp_path / f"r{i}_decoded.mid"))
        assert midi.encode_file(out).tolist() == ids.tolist()
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


@needs_mido
def test_any_token_sequence_decodes_to_a_valid_midi(tmp_path):
    ids = np.random.default_rng(1).integers(0, midi.VOCAB_SIZE, 3000)
    path = midi.write_midi(ids, str(tmp_path / "gen.mid"))
    read = mido.MidiFile(path)
    ons = sum(1 for m in read if m.type == "note_on")
    offs = sum(1 for m in read if m.type == "note_off")
    assert ons == int((ids < OFF).sum()) == offs  # every note-on written, every note closed
    assert len(midi.encode_file(path)) > 0
    with pytest.raises(ValueError):
        midi.write_midi([ON + 60, midi.VOCAB_SIZE], str(tmp_path / "bad.mid"))


# ---------------------------------------------------------------- maestro.py end to end

def make_midi_folder(folder, names, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
        random_midi(os.path.join(folder, name), rng)


@needs_mido
def test_maestro_folder_without_csv_and_bad_files(tmp_path):
    src, out = str(tmp_path / "in"), str(tmp_path / "maestro")
    make_midi_folder(src, [f"piece{i}.mid" for i in range(6)] + ["sub/piece6.MIDI"])
    with open(os.path.join(src, "junk.mid"), "wb") as f:
        f.write(b"MThd" + bytes(30))  # a broken header
    save_midi(os.path.join(src, "meta_only.mid"), [[tempo(0, 100)]])  # a valid MIDI file without notes
    save_midi(os.path.join(src, "drums.mid"), [[note(0, 36, channel=9), note(100, 36, off=True, channel=9)]])
    with open(os.path.join(src, "readme.txt"), "w") as f:
        f.write("performances\n")
    code, stdout, err = run_prepare("maestro", "--input", src, "--out", out, "--workers", "2")
    assert code == 0, err
    assert "skipped 3 MIDI files" in err and "7 files used, 3 skipped, 1 non-MIDI" in stdout
    meta, splits = load_dataset(out)
    assert (meta["modality"], meta["tokenizer"], meta["vocab_size"], meta["dtype"]) == ("music", "midi_events", 388, "uint16")
    assert_file_split(meta)
    assert sorted(sum(meta["files"].values(), [])) == sorted([f"piece{i}.mid" for i in range(6)] + ["sub/piece6.MIDI"])
    assert [len(f) for f in meta["files"].values()] == [5, 1, 1]
    for split, names in meta["files"].items():
        expect = np.concatenate([midi.encode_file(os.path.join(src, n)) for n in names])
        assert splits[split].tolist() == expect.tolist()


@needs_mido
def test_maestro_zip_with_official_csv_and_a_corrupt_member(tmp_path):
    made = str(tmp_path / "made")
    names = [f"2018/perf{i}.midi" for i in range(5)]
    make_midi_folder(made, names, seed=1)
    rows = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n" + "".join(
        f'X,"Piece, {i}",{s},2018,{n},{n[:-5]}.wav,1.0\n'
        for i, (n, s) in enumerate(zip(names, ["train", "validation", "test", "train", "validation"])))
    zip_path = str(tmp_path / "maestro-v3.0.0-midi.zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("maestro-v3.0.0/maestro-v3.0.0.csv", rows)
        z.writestr("maestro-v3.0.0/maestro-v3.0.0.json", "{}")
        for n in names + ["2018/unlisted.midi"]:
            z.write(os.path.join(made, n if n in names else names[0]), f"maestro-v3.0.0/{n}")
    data = bytearray(open(zip_path, "rb").read())
    first = data.index(b"MTrk", data.index(b"maestro-v3.0.0/2018/perf4.midi"))  # damage perf4's bytes: its CRC check fails
    data[first + 20:first + 40] = bytes(20)
    with open(zip_path, "wb") as f:
        f.write(data)
    out = str(tmp_path / "maestro")
    code, stdout, err = run_prepare("maestro", "--input", zip_path, "--out", out, "--workers", "1")
    assert code == 0, err
    assert "unlisted.midi (not in maestro-v3.0.0.csv)" in err and "perf4.midi (BadZipFile" in err
    meta = dataset.read_meta(out)
    prefix = "maestro-v3.0.0/2018/"
    assert meta["files"] == {"train": [prefix + "perf0.midi", prefix + "perf3.midi"],
                             "val": [prefix + "perf1.midi"], "test": [prefix + "perf2.midi"]}
    assert "4 files used, 2 skipped, 1 non-MIDI files ignored" in stdout

    with open(zip_path, "wb") as f:  # a truncated download
        f.write(data[: len(data) // 2])
    assert_clean_failure(*run_prepare("maestro", "--input", zip_path, "--out", out + "2")[::2], out + "2")


@needs_mido
@pytest.mark.parametrize("contents", [{}, {"a.mid": b"garbage", "b.midi": b""}, {"notes.txt": b"hello"}])
def test_maestro_no_usable_file_is_a_one_line_error(tmp_path, contents):
    src, out = tmp_path / "in", str(tmp_path / "maestro")
    src.mkdir()
    for name, data in contents.items():
        (src / name).write_bytes(data)
    code, _, err = run_prepare("maestro", "--input", str(src), "--out", out, "--workers", "1")
    assert_clean_failure(code, err, out)


@needs_mido
def test_maestro_hash_split_is_deterministic_and_mixed():
    names = [f"{composer}_{i}.mid" for composer in ("Bach", "Chopin", "Liszt") for i in range(20)]
    files = maestro.split_by_hash(names)
    assert files == maestro.split_by_hash(list(reversed(names)))
    assert [len(f) for f in files.values()] == [48, 6, 6]
    assert len({n.split("_")[0] for n in files["val"] + files["test"]}) > 1
    assert all(maestro.split_by_hash(names[:n]).values() for n in range(3, 20))


# ---------------------------------------------------------------- BPE

class FakeGPT2:
    """Stands in for tiktoken's GPT-2 encoding, which cannot be downloaded here: one id per UTF-8 byte."""
    eot_token = 50256

    def encode_ordinary(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")


def test_bpe_offline_is_a_clear_one_line_error(tmp_path):
    (tmp_path / "a.txt").write_text("Call me Ishmael.")
    out = str(tmp_path / "bpe")
    blocked = {"TIKTOKEN_CACHE_DIR": str(tmp_path / "empty_cache"), "HTTPS_PROXY": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}
    code, _, err = run_prepare("bpe", "--input", str(tmp_path / "a.txt"), "--out", out, env=blocked)
    assert_clean_failure(code, err, out)
    assert "GPT-2 encoding" in err and "TIKTOKEN_CACHE_DIR" in err


def test_bpe_memmaps_with_a_fake_encoding(tmp_path, monkeypatch):
    monkeypatch.setattr(gpt2, "_encoding", FakeGPT2())
    src = tmp_path / "books"
    (src / "more").mkdir(parents=True)
    (src / "a.txt").write_text("It was a bright cold day in April. " * 30)
    (src / "more" / "b.txt").write_text("Ünïcode and clocks striking thirteen. " * 30)
    (src / "c.txt").write_text("  \n")  # blank documents are dropped
    (src / "cover.jpg").write_bytes(b"\xff\xd8")
    out = str(tmp_path / "bpe")
    monkeypatch.setattr(sys, "argv", ["bpe.py", "--input", str(src), "--out", out])
    bpe.main()
    meta, splits = load_dataset(out)
    assert (meta["tokenizer"], meta["vocab_size"], meta["dtype"], meta["modality"]) == ("gpt2", 50257, "uint16", "text")
    ids = np.concatenate([splits["train"], splits["val"], splits["test"]])
    text_a, text_b = (src / "a.txt").read_text(), (src / "more" / "b.txt").read_text()
    assert ids.tolist() == list(text_a.encode()) + [50256] + list(text_b.encode()) + [50256]
    assert len(splits["val"]) == len(splits["test"]) == int(len(ids) * 0.05)


class FarGPT2(FakeGPT2):
    """Ids past 255 (as most GPT-2 ids are), one per character, and a decode that takes Python ints only."""

    def encode_ordinary(self, text):
        return [50000 + ord(c) for c in text]

    def decode(self, ids):
        assert all(type(i) is int for i in ids), ids
        return "".join(chr(i - 50000) for i in ids)


def test_gpt2_tokenizer_keeps_ids_past_a_byte(monkeypatch):
    monkeypatch.setattr(gpt2, "_encoding", FarGPT2())
    ids = gpt2.GPT2().encode("héllo")
    assert ids.dtype == np.uint16 and ids.tolist() == [50104, 50233, 50108, 50108, 50111]  # h, é (233), l, l, o
    assert gpt2.GPT2().decode(ids) == "héllo" and gpt2.GPT2().start() == [50010]  # "\n"
    assert gpt2.GPT2().end_of_document() == 50256


def test_bpe_bad_inputs(tmp_path, monkeypatch):
    monkeypatch.setattr(gpt2, "_encoding", FakeGPT2())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .txt files"):
        texts.read_documents(str(tmp_path / "empty"))
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetError, match="not a valid zip"):
        texts.read_documents(str(tmp_path / "bad.zip"))
    with zipfile.ZipFile(tmp_path / "t.zip", "w") as z:
        z.writestr("text8", "anarchism originated")
    assert texts.read_documents(str(tmp_path / "t.zip")) == [("text8", "anarchism originated")]


# ---------------------------------------------------------------- download

class Server(http.server.BaseHTTPRequestHandler):
    body = bytes(range(256)) * 40

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body if self.path == "/whole" else self.body[:1000])  # /short stops early

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_download_whole_truncated_and_wrong_size(tmp_path, server, monkeypatch):
    monkeypatch.setattr(common.time, "sleep", lambda s: None)  # no waiting between retries
    dest = str(tmp_path / "f.zip")
    assert common.download(f"{server}/whole", dest, expected_size=len(Server.body)) == dest
    assert open(dest, "rb").read() == Server.body
    for url, size in [(f"{server}/short", None), (f"{server}/whole", len(Server.body) + 1)]:
        with pytest.raises(DatasetError, match="could not download.*--input"):
            common.download(url, str(tmp_path / "g.zip"), expected_size=size)
        assert os.listdir(tmp_path) == ["f.zip"]  # nothing partial kept


# ---------------------------------------------------------------- the real files, where present

@needs_mido
@needs_scipy
@pytest.mark.skipif(not os.path.isdir(REAL_DATA), reason="set WAVELETGPT_REAL_DATA to a folder of real files")
def test_real_files(tmp_path):
    midis = sorted(os.listdir(os.path.join(REAL_DATA, "midi")))[::30]  # 5 of the 150; all 150 pass by hand
    for name in midis:
        ids = midi.encode_file(os.path.join(REAL_DATA, "midi", name))
        path = midi.write_midi(ids, str(tmp_path / "decoded.mid"))
        assert midi.encode_file(path).tolist() == ids.tolist(), name
    wav = sorted(os.listdir(os.path.join(REAL_DATA, "audio")))[0]
    x, rate = mulaw.read_wav(os.path.join(REAL_DATA, "audio", wav))
    ids = mulaw.mulaw_encode(mulaw.resample_to_16k(x[:rate * 5], rate))
    assert abs(len(ids) - 5 * 16000) <= 1 and 100 < len(set(ids.tolist())) <= 256


# ---------------------------------------------------------------- tones (synthetic piano), excerpt

def test_a_synthetic_note_has_its_pitch_stretched_partials_and_decays():
    from prepare import tones
    x = tones.note(69, 0.8, 1.0, np.random.default_rng(0))  # A4, held 1 s
    spectrum = np.abs(np.fft.rfft(x[:16000]))               # the first second: 1 Hz bins
    assert abs(int(np.argmax(spectrum)) - 440) <= 1
    eighth = 3400 + int(np.argmax(spectrum[3400:3700]))     # a stiff string's partials lie above k * f0
    assert 8 * 440 + 5 < eighth < 8 * 440 * 1.01
    loud, late = (np.sqrt(np.mean(x[a:a + 1600] ** 2)) for a in (0, 14000))
    assert late < 0.75 * loud and np.abs(x[-1600:]).max() < 0.01 * np.abs(x).max()  # decays, then rings out


def test_tones_is_deterministic_audio_split_by_piece(tmp_path):
    from prepare import tones
    code, out, err = run_prepare("tones", "--minutes", "1", "--out", str(tmp_path / "a"))
    assert code == 0 and "synthetic piano" in out, err
    meta, splits = load_dataset(str(tmp_path / "a"))
    assert meta["tokenizer"] == "mulaw" and meta["sample_rate"] == 16000 and "synthetic" in meta["source"]
    assert meta["pieces"] == {"train": 2, "val": 1, "test": 1} and meta["prepare"].endswith(" --minutes 1.0")
    ids = np.concatenate(list(splits.values()))
    assert 100 < len(set(ids.tolist())) and 0 < ids.min() and ids.max() < 255  # many levels, never clipped
    assert abs(len(ids) / 16000 - 60) < 20
    val = mulaw.mulaw_encode(tones.piece(0, 2))  # pieces 0, 1 train, 2 val, 3 test; each the same every time
    assert val.tolist() == splits["val"].tolist() and mulaw.mulaw_encode(tones.piece(1, 2))[:1000].tolist() != val[:1000].tolist()
    code, out, err = run_prepare("tones", "--minutes", "0.5", "--out", str(tmp_path / "d"))
    assert_clean_failure(code, err, str(tmp_path / "d"))
    assert "at least 0.8 minutes" in err


def test_excerpt_ends_at_a_line_break_and_replaces_only_itself(tmp_path):
    src, out = tmp_path / "in.txt", str(tmp_path / "small" / "x.txt")
    src.write_text("one two\nthree four\nfive\n")
    code, _, err = run_prepare("excerpt", "--input", str(src), "--out", out, "--chars", "12")
    assert code == 0 and open(out).read() == "one two\n", err
    code, stdout, _ = run_prepare("excerpt", "--input", str(src), "--out", out, "--chars", "12")
    assert code == 0 and "already holds" in stdout
    code, _, err = run_prepare("excerpt", "--input", str(src), "--out", out, "--chars", "100")
    assert code == 1 and "--overwrite" in err.strip().splitlines()[-1] and open(out).read() == "one two\n"
    code, _, err = run_prepare("excerpt", "--input", str(src), "--out", out, "--chars", "100", "--overwrite")
    assert code == 0 and open(out).read() == src.read_text(), err


@pytest.mark.parametrize('argv', [['prepare/excerpt.py', '--chars', 'abc'], ['prepare/tones.py', '--minutes'],
                                  ['prepare/text8.py', '--bogus']])
def test_a_command_line_argparse_rejects_is_one_line_too(argv, run_script, tmp_path):
    """A red-team pass: argparse printed its usage and the problem, exit 2. Now one line naming --help, exit 1."""
    r = run_script(argv, tmp_path)
    assert r.returncode == 1 and r.stderr.count('\n') == 1 and r.stderr.startswith('error: ') and '--help' in r.stderr


def test_binary_input_is_not_taken_for_text(run_script, tmp_path):
    """A red-team pass: a dataset's uint16 tokens are valid UTF-8 (zero bytes and all), and prepare/bytes.py made a
    dataset of them without a word. Zero bytes are refused now, before any work."""
    (tmp_path / 'tokens.bin').write_bytes(bytes([0, 3, 0, 7, 0, 1]) * 1000)
    r = run_script(['prepare/bytes.py', '--input', str(tmp_path / 'tokens.bin'), '--out', str(tmp_path / 'data' / 'x')],
                   tmp_path)
    assert r.returncode == 1 and 'holds zero bytes' in r.stderr and not (tmp_path / 'data' / 'x').exists(), r.stderr

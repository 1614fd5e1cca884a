"""
MAESTRO v3: about 200 h of piano performances as MIDI performance events. The paper's music dataset.

    python prepare/maestro.py                                  # download the MIDI zip (56 MB), build data/maestro
    python prepare/maestro.py --input maestro-v3.0.0-midi.zip  # offline: that zip, or a folder of .mid/.midi
    python prepare/maestro.py --input midi/ --out data/mymidi  # any MIDI files

Tokens: the event vocabulary of Oore et al. 2018 (Performance RNN, Music Transformer), 388 ids:
    0-127    note-on, by pitch
    128-255  note-off, by pitch
    256-355  time shift of 10, 20, ..., 1000 ms (longer silences take several)
    356-387  velocity: 32 bins of 4 MIDI velocities; sets the loudness of the note-ons that follow
All tracks and channels are merged into one piano; drum channel 10 is left out. The sustain pedal
(CC64 >= 64) holds a released note until the pedal is lifted or the same key is struck again.
Times are rounded to 10 ms, every note lasts at least 10 ms, silence before the first note is
dropped. At one instant, note-offs come before note-ons, each in pitch order, so the tokens of a
performance are unique and decoding them to MIDI and encoding again gives the same tokens.

Split by file: MAESTRO's own (the split column of maestro-v3.0.0.csv, in the zip or the folder:
962 / 137 / 177 files; MIDI files the CSV does not list are skipped). Without the CSV, files are
ordered by a hash of their name (deterministic, and mixes composers) and cut 80% / 10% / 10%,
at least one file each. With fewer than 3 files, each file's tokens are cut in time 90% / 5% / 5%.
"""
import argparse
import csv
import hashlib
import io
import multiprocessing
import os
import sys
import zipfile
from collections import Counter

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make `prepare` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prepare.common import DatasetError, download, main_guard, prepare_command, warn_skipped, write_dataset

URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip"
CSV_NAME = "maestro-v3.0.0.csv"
MIDI_EXTENSIONS = (".mid", ".midi")
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY, VOCAB_SIZE = 0, 128, 256, 356, 388
STEPS_PER_SECOND, MAX_SHIFT = 100, 100  # 10 ms steps; one time-shift token moves at most 1 s
DRUM_CHANNEL = 9  # channel 10, counting from 1
SUSTAIN = 64


def import_mido():
    try:
        import mido
    except ImportError:
        raise DatasetError("reading MIDI needs mido: pip install mido")
    return mido


def velocity_bin(velocity):
    return (velocity - 1) // 4  # 1..127 -> 0..31


def read_notes(midi):
    """A mido.MidiFile -> notes [pitch, velocity, start s, end s], sustain pedal applied."""
    notes, held, sustained, pedal, t = [], {}, {}, [False] * 16, 0.0
    for msg in midi:  # all tracks merged in time order; msg.time is seconds, tempo map applied
        t += msg.time
        if msg.type not in ("note_on", "note_off", "control_change") or msg.channel == DRUM_CHANNEL:
            continue
        if msg.type == "control_change":
            if msg.control == SUSTAIN:
                if pedal[msg.channel] and msg.value < 64:  # pedal lifted: sustained notes end now
                    for key in [k for k in sustained if k[0] == msg.channel]:
                        for i in sustained.pop(key):
                            notes[i][3] = t
                pedal[msg.channel] = msg.value >= 64
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            for i in sustained.pop(key, []):  # the same key struck again ends the sustained note
                notes[i][3] = t
            held.setdefault(key, []).append(len(notes))
            notes.append([msg.note, msg.velocity, t, None])
        elif held.get(key):  # note-off (or note-on with velocity 0) releases the oldest held note
            i = held[key].pop(0)
            if pedal[msg.channel]:
                sustained.setdefault(key, []).append(i)
            else:
                notes[i][3] = t
    for note in notes:  # never released, or still under the pedal: the note lasts to the end
        if note[3] is None:
            note[3] = t
    return notes


def notes_to_tokens(notes):
    """Notes -> uint16 event ids (see module docstring)."""
    events = []
    for pitch, velocity, start, end in notes:
        on = round(start * STEPS_PER_SECOND)
        events.append((on, 1, pitch, velocity_bin(velocity)))
        events.append((max(round(end * STEPS_PER_SECOND), on + 1), 0, pitch, 0))
    events.sort()  # by time; at one time offs (0) before ons (1); then pitch, velocity
    ids, now, current_bin = [], events[0][0] if events else 0, None
    for step, is_on, pitch, vbin in events:
        while step > now:
            shift = min(step - now, MAX_SHIFT)
            ids.append(TIME_SHIFT + shift - 1)
            now += shift
        if is_on and vbin != current_bin:
            ids.append(VELOCITY + vbin)
            current_bin = vbin
        ids.append((NOTE_ON if is_on else NOTE_OFF) + pitch)
    return np.array(ids, dtype=np.uint16)


def encode_file(path):
    """A MIDI file (path or bytes) -> uint16 event ids (also how sample.py turns a .mid into a prompt)."""
    mido = import_mido()
    midi = mido.MidiFile(file=io.BytesIO(path), clip=True) if isinstance(path, bytes) else mido.MidiFile(path, clip=True)
    return notes_to_tokens(read_notes(midi))


def write_midi(ids, path, meta=None):
    """Event ids -> a one-track MIDI file, written atomically. Notes still on at the end are closed."""
    mido = import_mido()
    # 500 ticks per beat at 120 bpm: one tick is 1 ms, so every 10 ms step is a whole number of ticks
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    step = last = 0
    velocity, sounding = 64, Counter()  # velocity until the first velocity token: the middle bin

    def add(kind, pitch, vel):
        nonlocal last
        track.append(mido.Message(kind, note=pitch, velocity=vel, time=10 * (step - last)))
        last = step

    for i in map(int, ids):
        if i < NOTE_OFF:
            add("note_on", i - NOTE_ON, velocity)
            sounding[i - NOTE_ON] += 1
        elif i < TIME_SHIFT:
            if sounding[i - NOTE_OFF]:  # a note-off with no note on (generated tokens) is dropped
                add("note_off", i - NOTE_OFF, 0)
                sounding[i - NOTE_OFF] -= 1
        elif i < VELOCITY:
            step += i - TIME_SHIFT + 1
        elif i < VOCAB_SIZE:
            velocity = 4 * (i - VELOCITY) + 2  # the middle of the bin
        else:
            raise ValueError(f"token id {i} is outside the MIDI event vocabulary (0..{VOCAB_SIZE - 1})")
    for pitch in sorted(sounding):
        for _ in range(sounding[pitch]):
            add("note_off", pitch, 0)
    track.append(mido.MetaMessage("end_of_track", time=10 * (step - last)))
    midi = mido.MidiFile(ticks_per_beat=500)
    midi.tracks.append(track)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        midi.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


decode_to_midi = write_midi


def seconds(ids):
    """Length of event ids in seconds (the sum of their time shifts)."""
    ids = np.asarray(ids, dtype=np.int64)
    shifts = ids[(ids >= TIME_SHIFT) & (ids < VELOCITY)]
    return float((shifts - TIME_SHIFT + 1).sum()) / STEPS_PER_SECOND


def list_input(path):
    """(MIDI names, other names, read(name) -> bytes) for a zip or a folder of files, or one file."""
    if os.path.isdir(path):
        names = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            names += [os.path.relpath(os.path.join(root, f), path) for f in files if not f.startswith(".")]

        def read(name):
            with open(os.path.join(path, name), "rb") as f:
                return f.read()
    elif zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)  # stays open while the script runs
            names = [n for n in archive.namelist() if not n.endswith("/") and not os.path.basename(n).startswith(".")]
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DatasetError(f"{path} is a corrupt zip ({e}); download it again")
        read = archive.read
    elif not os.path.exists(path):
        raise DatasetError(f"--input {path} does not exist")
    elif path.lower().endswith(".zip"):
        raise DatasetError(f"{path} is not a valid zip (corrupt or truncated download); download it again")
    else:
        names = [os.path.basename(path)]

        def read(name):
            with open(path, "rb") as f:
                return f.read()
    names = sorted(names)
    is_midi = [n.lower().endswith(MIDI_EXTENSIONS) for n in names]
    return [n for n, m in zip(names, is_midi) if m], [n for n, m in zip(names, is_midi) if not m], read


def read_csv_split(others, read):
    """{MIDI base name: split} from MAESTRO's CSV among the input's other files, or None."""
    for name in others:
        if os.path.basename(name) == CSV_NAME:
            rows = csv.DictReader(io.StringIO(read(name).decode("utf-8", errors="replace")))
            to_split = {"train": "train", "validation": "val", "test": "test"}
            try:
                return {os.path.basename(r["midi_filename"]): to_split[r["split"]] for r in rows}
            except KeyError as e:
                raise DatasetError(f"{name}: unexpected column or split {e}; use MAESTRO's own CSV or remove it")
    return None


def split_by_hash(names):
    """Names -> {split: names}: ordered by a hash of the name, 80% / 10% / 10%, at least one each."""
    names = sorted(names, key=lambda n: hashlib.md5(n.encode()).hexdigest())
    n_val = n_test = max(1, round(0.1 * len(names)))
    n_train = len(names) - n_val - n_test
    return {"train": names[:n_train], "val": names[n_train:n_train + n_val], "test": names[n_train + n_val:]}


def split_tokens(tokens, csv_split):
    """{name: ids} -> ({split: ids}, {split: names}, rule), as the module docstring says."""
    if csv_split is not None:
        files = {s: [n for n in tokens if csv_split[os.path.basename(n)] == s] for s in ("train", "val", "test")}
        files = {s: f for s, f in files.items() if f or s != "test"}  # write_dataset reports an empty train/val
        rule = f"by file: the split column of {CSV_NAME}"
    elif len(tokens) >= 3:
        files, rule = split_by_hash(list(tokens)), "by file: ordered by md5 of the name, 80% / 10% / 10%"
    else:
        parts = {"train": [], "val": [], "test": []}
        for ids in tokens.values():
            cuts = [0, int(len(ids) * 0.90), int(len(ids) * 0.95), len(ids)]
            for split, a, b in zip(parts, cuts, cuts[1:]):
                parts[split].append(ids[a:b])
        splits = {s: np.concatenate(p) for s, p in parts.items()}
        return splits, {s: list(tokens) for s in parts}, "fewer than 3 files: each file cut in time, 90% / 5% / 5%"
    empty = [np.zeros(0, np.uint16)]
    return {s: np.concatenate([tokens[n] for n in f] or empty) for s, f in files.items()}, files, rule


def read_safely(read, name):
    """The file's bytes, or the exception that reading it raised (a bad zip member, no permission)."""
    try:
        return read(name)
    except Exception as e:
        return e


def tokenize(item):
    """(name, bytes or exception) -> (name, ids or None, why not). Runs in worker processes."""
    name, data = item
    try:
        if isinstance(data, Exception):
            raise data
        ids = encode_file(data)
    except DatasetError:
        raise
    except Exception as e:  # mido raises many types on broken files
        return name, None, f"{type(e).__name__}: {e}".rstrip(": ")
    return name, ids, None if len(ids) else "no notes"


def tokenize_all(items, total, workers):
    """tokenize() each (name, bytes), in order, with a progress bar; in parallel if workers > 1."""
    bar = dict(total=total, desc="tokenizing", unit="file")
    if workers <= 1:
        yield from tqdm(map(tokenize, items), **bar)
        return
    with multiprocessing.Pool(workers) as pool:
        yield from tqdm(pool.imap(tokenize, items, chunksize=4), **bar)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="the MAESTRO MIDI zip, a zip or folder of .mid/.midi files, or one file")
    p.add_argument("--out", default="data/maestro", help="output folder")
    p.add_argument("--cache", default="data/downloads", help="where the download is kept")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes")
    args = p.parse_args()
    import_mido()
    source = args.input or download(URL, os.path.join(args.cache, os.path.basename(URL)))
    names, others, read = list_input(source)
    if not names:
        raise DatasetError(f"no .mid or .midi files in {source}; pass MIDI files (a folder or a zip)")
    csv_split, n_midi, skipped = read_csv_split(others, read), len(names), []
    ignored = [n for n in others if os.path.basename(n) != CSV_NAME or csv_split is None]
    if csv_split is not None:
        skipped = [f"{n} (not in {CSV_NAME})" for n in names if os.path.basename(n) not in csv_split]
        names = [n for n in names if os.path.basename(n) in csv_split]
    tokens = {}
    for name, ids, why in tokenize_all(((n, read_safely(read, n)) for n in names), len(names), args.workers):
        if why:
            skipped.append(f"{name} ({why})")
        else:
            tokens[name] = ids
    warn_skipped(skipped, "MIDI files")
    if not tokens:
        raise DatasetError(f"none of the {n_midi} MIDI files in {source} has readable notes "
                           f"(first: {skipped[0]}); pass Standard MIDI Files")
    splits, files, rule = split_tokens(tokens, csv_split)
    cmd = prepare_command("maestro", p, args)
    meta = {"vocab_size": VOCAB_SIZE, "dtype": "uint16", "modality": "music", "tokenizer": "midi_events",
            "steps_per_second": STEPS_PER_SECOND, "start_token": VELOCITY + 16,  # pieces begin with a velocity
            "files": files, "split_rule": rule, "source": args.input or URL, "prepare": cmd}
    meta = write_dataset(args.out, splits, meta)
    print(f"{args.out}: " + ", ".join(f"{s} {n:,} tokens ({seconds(splits[s]) / 3600:,.2f} h, {len(files[s])} files)"
                                      for s, n in meta["tokens"].items()) +
          f"; {len(tokens)} files used, {len(skipped)} skipped, {len(ignored)} non-MIDI files ignored")


if __name__ == "__main__":
    main_guard(main)

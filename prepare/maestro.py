"""
MAESTRO v3: about 200 h of piano performances as MIDI performance events. The paper's music dataset.

    python prepare/maestro.py                                  # download the MIDI zip (56 MB), build data/maestro
    python prepare/maestro.py --input maestro-v3.0.0-midi.zip  # offline: that zip, or a folder of .mid/.midi
    python prepare/maestro.py --input midi/ --out data/mymidi  # any MIDI files

Tokens: the event vocabulary of Oore et al. 2018 (Performance RNN, Music Transformer), 388 ids
(tokens/midi.py): note-on and note-off by pitch, time shifts of 10 ms to 1 s, 32 velocity bins.
All tracks and channels are merged into one piano (drum channel 10 left out), and the sustain
pedal extends notes.

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
import signal
import sys
import zipfile

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
from tqdm import tqdm

from errors import UserError, main_guard
from dataset import DatasetError, write_dataset
from prepare.common import download, parse_args, prepare_command, warn_skipped
from tokens.midi import MidiEvents, encode_file, import_mido, seconds

URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip"
SHA256 = "70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c"  # the published one
CSV_NAME = "maestro-v3.0.0.csv"
MIDI_EXTENSIONS = (".mid", ".midi")


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
    except UserError:  # mido missing: no file can be read
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
    # spawn, not fork: a forked worker can inherit a lock some thread of the parent held, and hang. Ctrl-C
    # reaches the workers too: they ignore it, and this process stops them (the pool's exit) and says so once
    with multiprocessing.get_context("spawn").Pool(workers, initializer=signal.signal,
                                                   initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
        yield from tqdm(pool.imap(tokenize, items, chunksize=4), **bar)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="the MAESTRO MIDI zip, a zip or folder of .mid/.midi files, or one file")
    p.add_argument("--out", default="data/maestro", help="output folder")
    p.add_argument("--cache", default="data/downloads", help="where the download is kept")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes")
    args = parse_args(p)
    import_mido()
    source = args.input or download(URL, os.path.join(args.cache, os.path.basename(URL)), sha256=SHA256)
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
    meta = dict(MidiEvents.facts(), files=files, split_rule=rule, source=args.input or URL, prepare=cmd)
    meta = write_dataset(args.out, splits, meta)
    print(f"{args.out}: " + ", ".join(f"{s} {n:,} tokens ({seconds(splits[s]) / 3600:,.2f} h, {len(files[s])} files)"
                                      for s, n in meta["tokens"].items()) +
          f"; {len(tokens)} files used, {len(skipped)} skipped, {len(ignored)} non-MIDI files ignored")


if __name__ == "__main__":
    main_guard(main)

"""
What every prepare script shares: the on-disk dataset format, atomic writes, downloads, inputs.

A dataset is a folder data/<name>/ holding
    train.bin, val.bin (and optionally test.bin): raw token ids, little-endian, meta["dtype"]
    meta.json: dtype, vocab_size, modality, tokenizer, token counts per split, how to rebuild it,
               and whatever the tokenizer needs to decode (e.g. "itos" for characters).
The token counts in meta.json act as the header: a truncated or swapped .bin file fails loudly.
"""
import glob
import json
import os
import shutil
import sys
import time
import urllib.request
import zipfile

import numpy as np

DTYPES = {"uint8": np.uint8, "uint16": np.uint16}
META_VERSION = 1


class DatasetError(Exception):
    """A dataset that is missing or inconsistent. The message names the fix."""


def smallest_dtype(vocab_size):
    return "uint8" if vocab_size <= 256 else "uint16"


def write_dataset(out_dir, splits, meta):
    """Write {split: array} and meta.json into out_dir atomically: all of it or none of it."""
    meta = dict(meta, version=META_VERSION)
    dtype = meta.setdefault("dtype", smallest_dtype(meta["vocab_size"]))
    assert meta["vocab_size"] <= np.iinfo(DTYPES[dtype]).max + 1, "vocab too large for dtype"
    for need in ("train", "val"):
        if len(splits.get(need, ())) == 0:
            raise DatasetError(f"the {need} split is empty: give more input data")
    meta["tokens"] = {}
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    tmp = f"{out_dir}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        for split, ids in splits.items():
            ids = np.asarray(ids)
            if ids.size and (ids.min() < 0 or ids.max() >= meta["vocab_size"]):
                raise DatasetError(f"{split} has token ids outside [0, {meta['vocab_size']})")
            ids.astype(DTYPES[dtype]).tofile(os.path.join(tmp, f"{split}.bin"))
            meta["tokens"][split] = int(ids.size)
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        old = f"{out_dir}.old-{os.getpid()}"
        if os.path.exists(out_dir):
            os.rename(out_dir, old)  # the previous dataset survives until the new one is in place
        os.rename(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def rebuild_hint(data_dir):
    """How to (re)build a dataset: the command in its meta.json, else the script of the same name."""
    try:
        with open(os.path.join(data_dir, "meta.json")) as f:
            return f"rebuild it with: {json.load(f)['prepare']}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    name = os.path.basename(os.path.normpath(data_dir))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    if os.path.exists(script):
        return f"build it with: python prepare/{name}.py"
    return f"build it with a prepare/ script and --out {data_dir} (see README, 'Datasets')"


def read_meta(data_dir):
    """meta.json of a dataset, checked against its .bin files. Raises DatasetError."""
    fix = rebuild_hint(data_dir)
    path = os.path.join(data_dir, "meta.json")
    if not os.path.exists(path):
        raise DatasetError(f"no dataset at {data_dir} (meta.json missing); {fix}")
    try:
        with open(path) as f:
            meta = json.load(f)
        dtype, vocab_size, tokens = meta["dtype"], int(meta["vocab_size"]), meta["tokens"]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path} is unreadable or incomplete ({e}); {fix}")
    if dtype not in DTYPES:
        raise DatasetError(f"{path}: dtype {dtype!r} is not uint8 or uint16; {fix}")
    if vocab_size > np.iinfo(DTYPES[dtype]).max + 1:
        raise DatasetError(f"{path}: vocab_size {vocab_size} does not fit {dtype}; {fix}")
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    for split in ("train", "val"):
        bin_path = os.path.join(data_dir, f"{split}.bin")
        if not os.path.exists(bin_path):
            raise DatasetError(f"{bin_path} is missing; {fix}")
        size = os.path.getsize(bin_path)
        if size % itemsize:
            raise DatasetError(f"{bin_path}: {size} bytes is not a multiple of {dtype}; {fix}")
        if size // itemsize != tokens.get(split):
            raise DatasetError(f"{bin_path} holds {size // itemsize} tokens, meta.json says "
                               f"{tokens.get(split)} (truncated or mixed up); {fix}")
    return meta


def check_token_range(data_dir, meta, chunk=1 << 24):
    """Scan every split for ids >= vocab_size (a dataset built for another vocabulary)."""
    for split in meta["tokens"]:
        data = np.memmap(os.path.join(data_dir, f"{split}.bin"), dtype=DTYPES[meta["dtype"]], mode="r")
        for i in range(0, len(data), chunk):
            top = int(data[i:i + chunk].max(initial=0))
            if top >= meta["vocab_size"]:
                raise DatasetError(f"{data_dir}/{split}.bin has token id {top} >= vocab_size "
                                   f"{meta['vocab_size']}; {rebuild_hint(data_dir)}")


def read_documents(path):
    """[(name, text)] from a text file, a folder of .txt files, or a zip."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True))
        if not files:
            raise DatasetError(f"no .txt files in {path}; pass a folder of UTF-8 .txt files")
        return [doc for f in files for doc in read_documents(f)]
    if not os.path.exists(path):
        raise DatasetError(f"--input {path} does not exist")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                names = [n for n in names if n.lower().endswith(".txt")] or names
                if not names:
                    raise DatasetError(f"{path} is an empty zip; pass text files")
                return [(n, z.read(n).decode("utf-8", errors="replace")) for n in sorted(names)]
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DatasetError(f"{path} is a corrupt zip ({e}); download it again")
    if path.lower().endswith(".zip"):
        raise DatasetError(f"{path} is not a valid zip (corrupt or truncated download); download it again")
    with open(path, "rb") as f:
        return [(os.path.basename(path), f.read().decode("utf-8", errors="replace"))]


def split_by_fraction(ids, val_frac, test_frac=0.0):
    """Contiguous train / val / test split: no window straddles two splits."""
    n = len(ids)
    n_val, n_test = int(n * val_frac), int(n * test_frac)
    n_train = n - n_val - n_test
    splits = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val]}
    if n_test:
        splits["test"] = ids[n_train + n_val:]
    return splits


def download(url, dest, expected_size=None, retries=3, chunk=1 << 20):
    """Download url to dest with a progress bar and retries; keep nothing partial."""
    from tqdm import tqdm
    if os.path.exists(dest) and (expected_size is None or os.path.getsize(dest) == expected_size):
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=30) as r, open(part, "wb") as f:
                total = int(r.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dest)) as bar:
                    while block := r.read(chunk):
                        f.write(block)
                        bar.update(len(block))
            got = os.path.getsize(part)
            if (total and got != total) or (expected_size and got != expected_size):
                raise IOError(f"truncated download: got {got} bytes, expected {expected_size or total}")
            os.replace(part, dest)
            return dest
        except Exception as e:  # network errors come in many types; all get the same retry
            if os.path.exists(part):
                os.remove(part)
            if attempt == retries:
                raise DatasetError(f"could not download {url} ({e}); without network, download it "
                                   f"elsewhere and pass the file with --input")
            print(f"download failed ({e}); retry {attempt}/{retries - 1} in {2 ** attempt}s", file=sys.stderr)
            time.sleep(2 ** attempt)


def prepare_command(script, parser, args):
    """The command that rebuilds this dataset, saved in meta.json: the script and what was given."""
    given = [f"--{k} {v}" for k, v in vars(args).items() if v is not None and v != parser.get_default(k)]
    return " ".join([f"python prepare/{script}.py"] + given)


def warn_skipped(skipped, what):
    """One warning line for files that could not be used: how many, and the first few reasons."""
    if skipped:
        print(f"warning: skipped {len(skipped)} {what}: " + "; ".join(skipped[:5]) +
              (" ..." if len(skipped) > 5 else ""), file=sys.stderr)


def main_guard(fn):
    """Run a prepare script's main(); a DatasetError becomes one line on stderr and exit 1."""
    try:
        fn()
    except DatasetError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: nothing was written")

"""
The on-disk dataset format, written by prepare/*.py and streamed by train.py.

A dataset is a folder data/<name>/ holding
    train.bin, val.bin (and optionally test.bin): raw token ids, little-endian, meta["dtype"]
    meta.json: dtype, vocab_size, modality, tokenizer, token counts per split, how to rebuild it,
               and whatever the tokenizer needs to decode (e.g. "itos" for characters).
The token counts in meta.json act as the header: a truncated or swapped .bin file fails loudly.
"""
import json
import os
import shutil

import numpy as np

from errors import UserError

DTYPES = {"uint8": np.uint8, "uint16": np.uint16}
META_VERSION = 1


class DatasetError(UserError):
    """A dataset that is missing or inconsistent, or input that makes none. The message names the fix."""


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
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare", f"{name}.py")
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


def open_split(data_dir, meta, split):
    """One split as a read-only memmap. Open it afresh for each use: a long-lived memmap keeps
    growing the process's resident memory."""
    return np.memmap(os.path.join(data_dir, f"{split}.bin"), dtype=DTYPES[meta["dtype"]], mode="r")

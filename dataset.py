"""
The on-disk dataset format, written by prepare/*.py and streamed by train.py.

A dataset is a folder data/<name>/ holding
    train.bin, val.bin (and optionally test.bin): raw token ids, little-endian, meta["dtype"]
    meta.json: dtype, vocab_size, modality, tokenizer, token counts per split, how to rebuild it,
               and whatever the tokenizer needs to decode (e.g. "itos" for characters).
    {split}.bytes.bin (optional, meta["byte_counts"]): how many bytes of the original UTF-8 text
               each group of meta["byte_counts"]["tokens_per_count"] tokens stands for, so that a
               loss can be reported in bits per byte whatever the tokenizer.
The token counts in meta.json act as the header: a truncated or swapped .bin file fails loudly.
A dataset is written whole or not at all, and only where nothing is yet or over another dataset
(outputs.check_dataset_folder): a folder of anything else is never replaced.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

import tokens
from errors import UserError, reason
from outputs import WRITE_MARKER, check_dataset_folder, made_by

DTYPES = {"uint8": np.uint8, "uint16": np.uint16}
META_VERSION = 1


class DatasetError(UserError):
    """A dataset that is missing or inconsistent, or input that makes none. The message names the fix."""


def smallest_dtype(vocab_size):
    return "uint8" if vocab_size <= 256 else "uint16"


def write_dataset(out_dir, splits, meta, extras=None):
    """Write {split: array} and meta.json into out_dir atomically: all of it or none of it. extras:
    {file name: array} written beside them (e.g. the byte counts of meta["byte_counts"])."""
    meta = dict(meta, version=META_VERSION)
    dtype = meta.setdefault("dtype", smallest_dtype(meta["vocab_size"]))
    assert meta["vocab_size"] <= np.iinfo(DTYPES[dtype]).max + 1, "vocab too large for dtype"
    for need in ("train", "val"):
        if len(splits.get(need, ())) == 0:
            raise DatasetError(f"the {need} split is empty: give more input data")
    meta["tokens"] = {}
    restore_set_aside(os.path.abspath(out_dir))
    check_dataset_folder(out_dir, made_by(meta), meta.get("tokenizer"))  # the scripts check it before their work;
    out_dir = os.path.abspath(out_dir)                                     # here, what changed since, and the kind
    for stale in abandoned(out_dir, "tmp") + abandoned(out_dir, "old"):  # left by runs that were killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp, old = f"{out_dir}.tmp-{os.getpid()}", f"{out_dir}.old-{os.getpid()}"
    made = False  # tmp, made by this call: removed however it ends, marked or not yet
    try:
        os.makedirs(os.path.dirname(out_dir), exist_ok=True)
        if os.path.exists(tmp) and not ours(tmp):  # a folder of this name that we did not make: never touched
            raise DatasetError(f"{tmp} is in the way, and is not a dataset being written; move it, or give another --out")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        made = True
        mark(tmp)
        for split, ids in splits.items():
            ids = np.asarray(ids)
            if ids.size and (ids.min() < 0 or ids.max() >= meta["vocab_size"]):
                raise DatasetError(f"{split} has token ids outside [0, {meta['vocab_size']})")
            ids.astype(DTYPES[dtype]).tofile(os.path.join(tmp, f"{split}.bin"))
            meta["tokens"][split] = int(ids.size)
        for name, array in (extras or {}).items():
            np.asarray(array).tofile(os.path.join(tmp, name))
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        if os.path.exists(old):
            raise DatasetError(f"{old} is in the way; move it, or give another --out")
        if os.path.exists(out_dir):
            mark(out_dir, old)  # the previous dataset survives until the new one is in place, known by this mark
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        unmark(out_dir)
        if ours(old):
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:  # a full disk, or the place made read-only meanwhile
        raise DatasetError(f"could not write the dataset {out_dir} ({reason(e, 80)}); free some space or give "
                           f"another --out (the previous dataset there, if any, is intact)")
    finally:
        if ours(old) and not os.path.exists(out_dir):  # stopped between the two renames
            os.rename(old, out_dir)
        unmark(out_dir)  # set aside and put back, or marked and stopped before it was set aside
        if made or ours(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return meta


def mark(folder, at=None):
    """The marker that says a folder is write_dataset's work in progress (a dataset being written, or the previous
    one set aside), with the path it has (or is about to have): the only way a leftover is known, never by its name."""
    with open(os.path.join(folder, WRITE_MARKER), "w") as f:
        f.write(json.dumps({"by": "dataset.write_dataset", "folder": os.path.abspath(at or folder), "pid": os.getpid()}))


def unmark(folder):
    try:
        os.remove(os.path.join(folder, WRITE_MARKER))
    except OSError:
        pass


def ours(folder):
    """Whether folder is write_dataset's work in progress at this very path (its marker says so)."""
    try:
        with open(os.path.join(folder, WRITE_MARKER)) as f:
            marker = json.load(f)
        return marker.get("by") == "dataset.write_dataset" and marker.get("folder") == os.path.abspath(folder)
    except (OSError, ValueError, AttributeError):
        return False


def running(pid):
    """Whether a process with this id exists (on Windows, where there is no harmless check, assume so)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        pass
    return True


def abandoned(data_dir, kind):
    """The folders data_dir.tmp-PID (kind "tmp": a dataset being written) or data_dir.old-PID ("old": the
    previous dataset, set aside during the swap) of write_dataset runs that are no longer running, known by the
    marker write_dataset wrote inside them (a folder of that name without it is the user's: left alone)."""
    paths = glob.glob(f"{glob.escape(data_dir)}.{kind}-*")
    paths = [p for p in paths if p.rsplit("-", 1)[1].isdigit() and not running(int(p.rsplit("-", 1)[1])) and ours(p)]
    return sorted(paths, key=os.path.getmtime)


def restore_set_aside(data_dir):
    """A rebuild killed between the two renames of its swap leaves the previous dataset at data_dir.old-PID
    and nothing at data_dir: put it back, and say so."""
    old = abandoned(data_dir, "old")
    if old and not os.path.exists(data_dir):
        os.rename(old[-1], data_dir)
        unmark(data_dir)
        print(f"warning: {data_dir} was missing: restored the previous dataset from {old[-1]}, set aside by a "
              f"rebuild that was interrupted", file=sys.stderr)


def rebuild_command(command, data_dir):
    """The command in a meta.json's 'prepare', made to write where the dataset is now: a dataset copied or moved
    elsewhere names the folder it was built in (--out, or the script's default, data/<script>)."""
    script = re.match(r"python prepare/(\w+)\.py", command)
    out = re.search(r" --out (.+?)(?= --\w|$)", command)
    built_in = out.group(1) if out else script and f"data/{script.group(1)}"
    if not built_in or os.path.normpath(built_in) == os.path.normpath(data_dir):
        return command
    return command[:out.start()] + f" --out {data_dir}" + command[out.end():] if out else f"{command} --out {data_dir}"


def rebuild_hint(data_dir):
    """How to (re)build a dataset: the command in its meta.json (to write where it is now), else the script of the
    same name."""
    try:
        with open(os.path.join(data_dir, "meta.json")) as f:
            return f"rebuild it with: {rebuild_command(json.load(f)['prepare'], data_dir)}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    name = os.path.basename(os.path.normpath(data_dir))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare", f"{name}.py")
    # a folder whose meta.json cannot be read is no dataset a prepare script may replace: it goes first
    first = f"move {data_dir} away (no prepare script replaces a folder it cannot tell is a dataset), then " \
        if os.path.exists(os.path.join(data_dir, "meta.json")) else ""
    if os.path.exists(script):
        return f"{first}build it with: python prepare/{name}.py"
    return f"{first}build it with a prepare/ script and --out {data_dir} (see README, 'Datasets')"


def meta_problem(meta):
    """What is wrong with the fields of a meta.json that the format needs, or None."""
    def count(x, low=0):
        return isinstance(x, int) and not isinstance(x, bool) and x >= low

    def dtype_name(x):
        return isinstance(x, str) and x in DTYPES
    if not isinstance(meta, dict):
        return "it is not a JSON object"
    dtype, vocab_size, tokens, counts = (meta.get(k) for k in ("dtype", "vocab_size", "tokens", "byte_counts"))
    if not dtype_name(dtype):
        return f"dtype {dtype!r} is not 'uint8' or 'uint16'"
    top = np.iinfo(DTYPES[dtype]).max + 1
    if not count(vocab_size, 1) or vocab_size > top:
        return f"vocab_size {vocab_size!r} is not a whole number from 1 to {top} (the most {dtype} holds)"
    if not (isinstance(tokens, dict) and {"train", "val"} <= set(tokens) and all(map(count, tokens.values()))):
        return f"tokens {str(tokens)[:60]} is not a token count for each split (train, val, and test if any)"
    if counts is not None and not (isinstance(counts, dict) and count(counts.get("tokens_per_count"), 1)
                                   and dtype_name(counts.get("dtype"))):
        return f"byte_counts {str(counts)[:60]} needs tokens_per_count (1 or more) and dtype"
    return None


def read_meta(data_dir):
    """meta.json of a dataset, checked against its .bin files. Raises DatasetError. A missing or empty
    optional split (test) is left out of meta["tokens"]."""
    restore_set_aside(data_dir)
    fix = rebuild_hint(data_dir)
    path = os.path.join(data_dir, "meta.json")
    if not os.path.exists(path):
        raise DatasetError(f"no dataset at {data_dir} (meta.json missing); {fix}")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path} is unreadable ({e}); {fix}")
    problem = meta_problem(meta)
    if problem:
        raise DatasetError(f"{path}: {problem}; {fix}")
    if isinstance(meta.get("prepare"), str):  # what a message advises (Equal-Info's too) rebuilds it here
        meta["prepare"] = rebuild_command(meta["prepare"], data_dir)
    dtype, tokens = meta["dtype"], meta["tokens"]
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    for split in list(tokens):
        bin_path = os.path.join(data_dir, f"{split}.bin")
        if split not in ("train", "val") and (tokens[split] == 0 or not os.path.exists(bin_path)):
            del tokens[split]
            continue
        if not os.path.exists(bin_path):
            raise DatasetError(f"{bin_path} is missing; {fix}")
        size = os.path.getsize(bin_path)
        if size % itemsize:
            raise DatasetError(f"{bin_path}: {size} bytes is not a multiple of {dtype}; {fix}")
        if size // itemsize != tokens[split]:
            raise DatasetError(f"{bin_path} holds {size // itemsize} tokens, meta.json says "
                               f"{tokens[split]} (truncated or mixed up); {fix}")
        if size == 0:
            raise DatasetError(f"the {split} split of {data_dir} holds no tokens: it needs more input data; {fix}")
    counts = meta.get("byte_counts")
    for split in tokens if counts else ():
        path = os.path.join(data_dir, f"{split}.bytes.bin")
        want = tokens[split] // counts["tokens_per_count"] * np.dtype(DTYPES[counts["dtype"]]).itemsize
        if not os.path.exists(path) or os.path.getsize(path) != want:
            raise DatasetError(f"{path} is missing or does not match {split}.bin; {fix}")
    return meta


def bytes_covered(data_dir, meta, split, offsets, block_size):
    """How many bytes of the original text the targets of the windows at `offsets` (tokens o+1 ..
    o+block_size) stand for: a group of k tokens that stands for n bytes counts n/k bytes per token.
    None for a dataset without byte counts. Fixed windows: compute it once, not at every evaluation."""
    counts = meta.get("byte_counts")
    if not counts:
        return None
    per = counts["tokens_per_count"]
    n = np.fromfile(os.path.join(data_dir, f"{split}.bytes.bin"), dtype=DTYPES[counts["dtype"]]).astype(np.float64)
    targets = np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(1, block_size + 1)
    return float(n[targets // per].sum() / per)



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


AUTO_PREPARE = {"pydocs": "pydocs.py", "tones": "tones.py"}  # datasets that need no download: built on first use


class Dataset:
    """
    A dataset by name, opened and checked: data/<name>/ (the offline pydocs or tones is built there first if it
    is missing and build=True), its meta.json, its tokenizer, the ids that are ordered bins of one
    quantity (audio levels; None for other tokens), and what training reads from it: batches drawn by
    (seed, iteration), fixed evaluation windows, the bytes those stand for. Tokens come back as int64
    numpy arrays: the device is the trainer's business.
    """

    def __init__(self, name, build=True):
        self.name, self.folder = name, os.path.join("data", name)
        if build and name in AUTO_PREPARE and not os.path.exists(os.path.join(self.folder, "meta.json")):
            self.build()
        self.meta = read_meta(self.folder)
        check_token_range(self.folder, self.meta)
        self.vocab_size = self.meta["vocab_size"]
        self.tokenizer = tokenizer_for(self.meta)
        self.ordered = self.tokenizer.ordered

    def build(self):
        print(f"building the offline dataset {self.folder} (first run only)")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare", AUTO_PREPARE[self.name])
        r = subprocess.run([sys.executable, script, "--out", self.folder], stderr=subprocess.PIPE, text=True)
        if r.returncode:  # its one-line error (--out refused, say) as ours
            last = (r.stderr.strip().splitlines() or [f"building {self.folder} failed"])[-1]
            raise UserError(last.removeprefix("error: "))

    def size(self, split):
        return self.meta["tokens"][split]

    def split(self, split):
        return open_split(self.folder, self.meta, split)

    def batch(self, split, offsets, block_size):
        """(x, y): the windows of block_size tokens at `offsets`, and the same shifted by one (the targets)."""
        data = self.split(split)
        x = np.stack([data[o:o + block_size] for o in offsets]).astype(np.int64)
        y = np.stack([data[o + 1:o + 1 + block_size] for o in offsets]).astype(np.int64)
        return x, y

    def train_offsets(self, seed, it, block_size, count):
        """Window starts of global batch `it`: a function of (seed, it) alone, so a resumed run sees the
        data an uninterrupted run would, and every DDP rank knows the whole batch."""
        rng = np.random.default_rng([seed, it])
        return rng.integers(0, self.size("train") - block_size, size=count)

    def eval_offsets(self, split, block_size, count):
        """Evenly spaced windows over the whole split: the same for every evaluation and every run."""
        return np.linspace(0, self.size(split) - block_size - 1, count).astype(np.int64)

    def bytes_covered(self, split, offsets, block_size):
        return bytes_covered(self.folder, self.meta, split, offsets, block_size)


def read_streams(data_dir, meta, split):
    """The window count of each stream of a split ({split}.streams.bin), checked against meta.json and the
    split's tokens: a DatasetError that names the rebuild if the file or meta.json's window fields are missing,
    truncated or edited."""
    fields = [k for k in ("bits", "token_bits", "tokens_per_window", "cap", "rows", "threads")
              if type(meta.get(k)) is not int or meta[k] < 1]
    if fields:
        raise DatasetError(f"{data_dir}/meta.json has no whole number for {', '.join(fields)}: the Equal-Info dataset "
                           f"is damaged; {rebuild_hint(data_dir)}")
    path = os.path.join(data_dir, f"{split}.streams.bin")
    windows, rows = meta["tokens"][split] // meta["tokens_per_window"], meta["rows"]
    if not os.path.isfile(path):
        why = "is missing"
    elif os.path.getsize(path) != 4 * rows:
        why = f"holds {os.path.getsize(path)} bytes, not a 4-byte count for each of the {rows} streams"
    else:
        counts = np.fromfile(path, dtype=np.uint32)
        why = None if int(counts.sum(dtype=np.int64)) == windows else f"does not add up to the {windows:,} windows of {split}.bin"
    if not why and meta["tokens"][split] % meta["tokens_per_window"]:
        why = f"does not fit {split}.bin, which ends inside a window"
    if why:
        raise DatasetError(f"{path} {why}: the Equal-Info dataset is damaged; {rebuild_hint(data_dir)}")
    return counts.tolist()


def tokenizer_kinds(meta):
    """Every kind of token a meta.json can name: the plain ones (tokens/), and for a dataset of Equal-Info
    windows theirs, which codes text with a GPT (equal_info/: torch and the model are imported only then)."""
    if meta.get("tokenizer") == "equal_info":
        from equal_info import EqualInfo
        return dict(tokens.KINDS, equal_info=EqualInfo)
    return tokens.KINDS


def tokenizer_for(meta):
    """The tokenizer of a dataset or a checkpoint, from its meta.json fields (checked)."""
    return tokens.for_meta(meta, tokenizer_kinds(meta))


def tokens_differ(a, b):
    """How the tokens of two meta.json differ, in a few words, or None (tokens.differ)."""
    return tokens.differ(a, b, {**tokenizer_kinds(a), **tokenizer_kinds(b)})

"""
Equal-Info Windows: text compressed by M1 (a byte-level GPT of this project) and an exact arithmetic
coder, in windows of `bits` bits each, as tokens for M2 (equal_info/coder.py says how).

    python prepare/bytes.py --input books/ --out data/books_m1 --chunk 16        # M1's data, then
    python train.py config/equal_info_m1.py --dataset=books_m1 --out_dir=out/m1_books
    python prepare/equal_info.py --input books/ --m1 out/m1_books/ckpt.pt --out data/books_ei16
    python prepare/equal_info.py --regroup data/books_ei16 --token_bits 8 --out data/books_ei8   # v=256, same windows
    python decode.py --data=data/books_ei16 --split=val --check=True               # back to text, checked

--input: a text file, a folder of .txt files, a zip, or 'pydocs'. Split: 90 / 5 / 5 % of the
characters in order, the same bytes as prepare/bytes.py and prepare/spm.py give. Each split is cut
into --rows streams, coded side by side (a stream's last window ends with it), by --workers processes
(default: one per core, each given 512 KB of text at least); the windows do not depend on them.
--regroup takes another Equal-Info dataset's windows and writes them with another token size, without
M1 (the windows' bits, cap and rows stay theirs: giving others is an error).

meta.json records b, the token size, the vocabulary, the cap, the streams per split (rows), the
coder's version, which M1 (path, a hash of its weights, and a fingerprint of the numbers it gives on
this machine: decoding with another M1, or where it computes otherwise, is refused), the bytes per
token, M1's bits per byte inside the windows and the speed. Each window's byte count is stored in
{split}.bytes.bin (train.py reports bits per byte), each stream's window count in {split}.streams.bin.
"""
import argparse
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np

from errors import main_guard
from dataset import DTYPES, DatasetError, read_meta, read_streams, tokenizer_for, write_dataset
from prepare.common import parse_args, prepare_command
from texts import input_text, split_text
from equal_info.coder import EqualInfo, cores, encode_parts, encode_streams, pack, unpack
from equal_info.windows import PRECISION


WINDOW_SETTINGS = {"bits": 16, "cap": 16, "rows": 512}  # how windows are made; --regroup keeps them


def check_sizes(args):
    if args.token_bits not in (8, 16):
        raise DatasetError(f"--token_bits {args.token_bits}: use 16 (v=65,536) or 8 (v=256)")
    if not (PRECISION + 2 <= args.bits <= 48 and args.bits % args.token_bits == 0):
        raise DatasetError(f"--bits {args.bits}: use a multiple of --token_bits from 16 to 48 (16: the paper's best)")
    if not 1 <= args.cap <= 255 or args.rows < 1 or (args.workers or 0) < 0:
        raise DatasetError("--cap must be 1 .. 255 bytes, --rows at least 1, --workers at least 0 (0: one per core)")


def check_rows(args, parts, given):
    """Each stream of each split holds a full window's bytes (--cap) at least: more streams would only cut the text
    into windows of a byte or two. Too many given is a one-line error; the default is lowered to fit, and said."""
    split, fewest = min(((k, len(v)) for k, v in parts.items()), key=lambda kv: kv[1])
    most = max(1, fewest // args.cap)
    if args.rows <= most:
        return
    if given:
        raise DatasetError(f"--rows {args.rows}: the {split} split holds {fewest:,} bytes, {most:,} stream(s) of "
                           f"--cap {args.cap} bytes at most; give --rows {most} or fewer, or more text")
    print(f"--rows {most} (not {args.rows}): the {split} split holds {fewest:,} bytes, a stream of {args.cap} at least "
          f"each", file=sys.stderr)
    args.rows = most


def encode(args, parser, rows_given=True):
    from equal_info.m1 import ByteModel  # torch: only when M1 is needed
    m1 = ByteModel(args.m1)          # first: a wrong checkpoint, or one the coder cannot run, fails before the text
    coder, described = m1.coder(args.cap), m1.describe(args.cap)
    text = input_text(args.input)
    source = args.input if args.input == "pydocs" and not os.path.exists(args.input) else os.path.abspath(args.input)
    workers = args.workers or cores()
    parts = split_text(text)
    check_rows(args, parts, rows_given)
    meta = dict(EqualInfo.facts(described, args.bits, args.token_bits, args.cap, args.rows),
                source=source, prepare=prepare_command("equal_info", parser, args), stats={})
    splits, extras = {}, {}
    for split, data in parts.items():
        start = time.time()
        values, counts, streams, information = encode_streams(coder, data, args.rows, args.bits, workers)
        seconds = max(time.time() - start, 1e-6)
        splits[split] = pack(values, args.bits, args.token_bits)
        extras[f"{split}.bytes.bin"] = np.array(counts, dtype=np.uint8)
        extras[f"{split}.streams.bin"] = np.array(streams, dtype=np.uint32)
        meta["stats"][split] = {"bytes": len(data), "windows": len(values), "seconds": round(seconds, 2),
                                "bytes_per_second": round(len(data) / seconds),
                                "workers": len(encode_parts(len(data), args.rows, workers)),  # the processes that ran
                                "m1_bits_per_byte": information / len(data) if data else None}
        print(f"{split}: {len(data):,} bytes -> {len(values):,} windows, {len(data) / max(1, len(values)):.3f} bytes "
              f"per window; M1 {information / max(1, len(data)):.4f} bits per byte inside the windows; "
              f"{len(data) / seconds:,.0f} bytes/s")
    return splits, extras, meta


def regroup(args, parser):
    """Another Equal-Info dataset's windows, written with args.token_bits."""
    meta = read_meta(args.regroup)
    if meta.get("tokenizer") != EqualInfo.name:
        raise DatasetError(f"--regroup {args.regroup} holds {meta.get('tokenizer')!r} tokens, not Equal-Info windows")
    meta = tokenizer_for(meta).meta  # its fields checked
    kept = [f"--{k} {getattr(args, k)}" for k in WINDOW_SETTINGS if getattr(args, k) not in (None, meta[k])]
    if kept:
        raise DatasetError(f"{', '.join(kept)}: --regroup keeps the windows of {args.regroup} as they were made ("
                           + ", ".join(f"{k} {meta[k]}" for k in WINDOW_SETTINGS) + "); give only --token_bits")
    command = prepare_command("equal_info", parser, args)
    for k in WINDOW_SETTINGS:
        setattr(args, k, meta[k])
    check_sizes(args)
    splits, extras = {}, {}
    for split in meta["tokens"]:
        ids = np.fromfile(os.path.join(args.regroup, f"{split}.bin"), dtype=DTYPES[meta["dtype"]])
        splits[split] = pack(unpack(ids, meta["bits"], meta["token_bits"]), meta["bits"], args.token_bits)
        extras[f"{split}.streams.bin"] = np.array(read_streams(args.regroup, meta, split), dtype=np.uint32)
        with open(os.path.join(args.regroup, f"{split}.bytes.bin"), "rb") as f:  # its size checked by read_meta
            extras[f"{split}.bytes.bin"] = np.frombuffer(f.read(), dtype=np.uint8)
    facts = EqualInfo.facts(meta["m1"], meta["bits"], args.token_bits, meta["cap"], meta["rows"], meta["threads"])
    facts["coder"] = meta.get("coder", 1)  # the windows stay those of the coder that made them (its version)
    meta = dict(meta, **facts, prepare=command)
    return splits, extras, meta


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="a text file, a folder of .txt files, a zip, or pydocs")
    p.add_argument("--m1", help="M1's checkpoint: a GPT trained on a bytes dataset (prepare/bytes.py)")
    p.add_argument("--regroup", help="instead of --input and --m1: an Equal-Info dataset to write with --token_bits")
    p.add_argument("--out", default="data/equal_info", help="output folder")
    p.add_argument("--bits", type=int, help="bits per window, b (default 16)")
    p.add_argument("--token_bits", type=int, default=16, help="16: one token per 16 bits (v=65,536); 8: v=256")
    p.add_argument("--cap", type=int, help="at most this many bytes per window (default 16)")
    p.add_argument("--rows", type=int, help="streams per split, coded side by side (default 512)")
    p.add_argument("--workers", type=int, help="processes coding streams (default: one per core, 512 KB of "
                                                "text each at least); the windows do not depend on it")
    args = parse_args(p)
    if (args.input or args.m1) if args.regroup else not (args.input and args.m1):
        raise DatasetError("give --input and --m1 (encode a text), or --regroup (another token size of a dataset)")
    if args.regroup and args.workers:
        raise DatasetError(f"--workers {args.workers}: --regroup runs no M1 (it only regroups the bits); leave it out")
    rows_given = args.rows is not None
    if not args.regroup:
        for k, v in WINDOW_SETTINGS.items():
            setattr(args, k, v if getattr(args, k) is None else getattr(args, k))
        check_sizes(args)
    splits, extras, meta = regroup(args, p) if args.regroup else encode(args, p, rows_given)
    per = meta["tokens_per_window"]
    meta["byte_counts"] = {"dtype": "uint8", "tokens_per_count": per}
    meta["start"] = splits["train"][:per].tolist()  # a neutral prompt for sampling: the text's first window
    meta["bytes_per_token"] = sum(s["bytes"] for s in meta["stats"].values()) / max(1, sum(map(len, splits.values())))
    meta = write_dataset(args.out, splits, meta, extras)
    print(f"{args.out}: " + ", ".join(f"{k} {v:,} tokens" for k, v in meta["tokens"].items()) +
          f"; v={meta['vocab_size']:,}, {meta['bytes_per_token']:.3f} bytes per token")


if __name__ == "__main__":
    main_guard(main)

"""
Bytes: any text as its UTF-8 bytes (256 ids, and BOS = 256; uint16). M2's byte baseline, and the
training data of M1, the model that drives the Equal-Info coder (prepare/equal_info.py).

    python prepare/bytes.py --input books/ --out data/books_bytes                 # M2's baseline: the bytes in order
    python prepare/bytes.py --input books/ --out data/books_m1 --chunk 16         # M1: BOS + 16 bytes, chunks shuffled
    python prepare/bytes.py --input pydocs --out data/pydocs_bytes                # the built-in docstrings, as they are

--input: a text file, a folder of .txt files, a zip, or 'pydocs' (Python's own docstrings, offline).
Split: 90 / 5 / 5 % of the characters, in order (texts.split_text: the same bytes as the
SentencePiece and Equal-Info datasets of the same input).

Why --chunk for M1: an Equal-Info window is coded from an empty context, BOS then the window's
bytes, and M1 must predict well there. With --chunk N each split is cut into pieces of N bytes,
each after a BOS, in shuffled order: what comes before a BOS is then unrelated text, so M1 learns
to predict from the BOS alone, which is all it gets when coding. Each token stores the bytes it
stands for (1, or 0 for BOS), so train.py reports bits per byte.
"""
import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np

from errors import main_guard
from dataset import DatasetError, write_dataset
from prepare.common import parse_args, prepare_command
from texts import input_text, split_text
from tokens.bytes import BOS, Bytes


def chunked(data, chunk, seed):
    """BOS before every `chunk` bytes, the chunks in shuffled order (seeded)."""
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    order = np.random.default_rng(seed).permutation(len(pieces))
    return np.concatenate([np.concatenate([[BOS], pieces[i]]) for i in order]).astype(np.uint16)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a text file, a folder of .txt files, a zip, or pydocs")
    p.add_argument("--out", default="data/bytes", help="output folder")
    p.add_argument("--chunk", type=int, default=0, help="M1's data: BOS before every N bytes, chunks shuffled (0: none)")
    p.add_argument("--seed", type=int, default=0, help="the shuffle of the chunks")
    args = parse_args(p)
    if not 0 <= args.chunk <= 65536:
        raise DatasetError(f"--chunk {args.chunk}: use 0 (no BOS) or a chunk length of 1 .. 65536 bytes")
    text = input_text(args.input)
    splits, counts = {}, {}
    for split, data in split_text(text).items():
        ids = np.frombuffer(data, dtype=np.uint8).astype(np.uint16)
        splits[split] = chunked(ids, args.chunk, args.seed) if args.chunk and len(ids) else ids
        counts[f"{split}.bytes.bin"] = (splits[split] != BOS).astype(np.uint8)
    meta = dict(Bytes.facts(), source=args.input, chunk=args.chunk, prepare=prepare_command("bytes", p, args),
                byte_counts={"dtype": "uint8", "tokens_per_count": 1})
    meta = write_dataset(args.out, splits, meta, counts)
    print(f"{args.out}: " + ", ".join(f"{k} {v:,} tokens" for k, v in meta["tokens"].items()) +
          f" ({sum(len(c) - int(c.sum()) for c in counts.values()):,} of them BOS)")


if __name__ == "__main__":
    main_guard(main)

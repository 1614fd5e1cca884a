"""
BPE text: any text as GPT-2 tokens (tiktoken's "gpt2" encoding, 50,257 ids), uint16 memmaps.

    python prepare/bpe.py --input books/                     # a folder of .txt files -> data/bpe
    python prepare/bpe.py --input book.txt --out data/book_bpe
    python prepare/bpe.py --input text8.zip --out data/text8_bpe   # a zip: its .txt members (all, if none is .txt)

tiktoken downloads the GPT-2 encoding (about 1.5 MB) on first use; offline, see tokens/gpt2.py.
Each document (file) ends with <|endoftext|> (id 50256). Split: the first 90% of the tokens
train, the next 5% val, the last 5% test.
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
from tqdm import tqdm

from errors import main_guard
from dataset import DatasetError, write_dataset
from prepare.common import parse_args, prepare_command
from texts import read_documents, split_by_fraction
from tokens.gpt2 import GPT2, get_encoding


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a text file, a folder of .txt files, or a zip")
    p.add_argument("--out", default="data/bpe", help="output folder")
    args = parse_args(p)
    get_encoding()  # first, so that offline it fails before reading a large corpus
    docs = [(name, text) for name, text in read_documents(args.input) if text.strip()]
    if not docs:
        raise DatasetError(f"{args.input} holds no text; pass UTF-8 text files")
    tok, ids = GPT2(), []
    for name, text in tqdm(docs, desc="BPE encoding", unit="doc"):
        ids.append(tok.encode(text))
        ids.append(np.array([tok.end_of_document()], dtype=np.uint16))
    ids = np.concatenate(ids)
    meta = dict(GPT2.facts(), source=args.input, prepare=prepare_command("bpe", p, args))
    meta = write_dataset(args.out, split_by_fraction(ids, 0.05, 0.05), meta)
    chars = sum(len(text) for _, text in docs)
    print(f"{args.out}: " + ", ".join(f"{k} {v:,} tokens" for k, v in meta["tokens"].items()) +
          f"; {len(docs)} documents, {chars:,} characters ({chars / len(ids):.2f} per token)")


if __name__ == "__main__":
    main_guard(main)

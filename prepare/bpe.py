"""
BPE text: any text as GPT-2 tokens (tiktoken's "gpt2" encoding, 50,257 ids), uint16 memmaps.

    python prepare/bpe.py --input books/                     # a folder of .txt files -> data/bpe
    python prepare/bpe.py --input book.txt --out data/book_bpe
    python prepare/bpe.py --input text8.zip --out data/text8_bpe   # a zip: its .txt members (all, if none is .txt)

tiktoken downloads the GPT-2 encoding (vocab.bpe and encoder.json, about 1.5 MB) on first use and
caches it in $TIKTOKEN_CACHE_DIR (default: data-gym-cache in the temp folder). Offline: run any
tiktoken GPT-2 encode once on a machine with network, copy that cache folder here, and point
TIKTOKEN_CACHE_DIR at it.

Each document (file) ends with <|endoftext|> (id 50256). Split: the first 90% of the tokens train,
the next 5% val, the last 5% test.
"""
import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make `prepare` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prepare.common import DatasetError, main_guard, prepare_command, read_documents, split_by_fraction, write_dataset

VOCAB_SIZE = 50257
_encoding = None


def get_encoding():
    """tiktoken's GPT-2 encoding, loaded once. Raises DatasetError when it cannot be had offline."""
    global _encoding
    if _encoding is None:
        try:
            import tiktoken
        except ImportError:
            raise DatasetError("BPE needs tiktoken: pip install tiktoken")
        try:
            _encoding = tiktoken.get_encoding("gpt2")
        except Exception as e:  # requests' ConnectionError offline; others for a bad cache
            reason = (str(e).strip().splitlines() or [""])[0]
            reason = reason if len(reason) < 90 else reason[:90] + "..."
            raise DatasetError(f"could not load tiktoken's GPT-2 encoding, which it downloads on first use "
                               f"({type(e).__name__}: {reason}); run once with network, or set "
                               f"TIKTOKEN_CACHE_DIR to a folder holding tiktoken's cached gpt2 files")
    return _encoding


def encode_text(text):
    """Text -> uint16 GPT-2 token ids (special tokens are encoded as plain text)."""
    return np.array(get_encoding().encode_ordinary(text), dtype=np.uint16)


def decode(ids):
    return get_encoding().decode([int(i) for i in ids])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a text file, a folder of .txt files, or a zip")
    p.add_argument("--out", default="data/bpe", help="output folder")
    args = p.parse_args()
    encoding = get_encoding()  # first, so that offline it fails before reading a large corpus
    docs = [(name, text) for name, text in read_documents(args.input) if text.strip()]
    if not docs:
        raise DatasetError(f"{args.input} holds no text; pass UTF-8 text files")
    ids = []
    for name, text in tqdm(docs, desc="BPE encoding", unit="doc"):
        ids.append(encode_text(text))
        ids.append(np.array([encoding.eot_token], dtype=np.uint16))
    ids = np.concatenate(ids)
    cmd = prepare_command("bpe", p, args)
    meta = {"vocab_size": VOCAB_SIZE, "dtype": "uint16", "modality": "text", "tokenizer": "gpt2",
            "source": args.input, "prepare": cmd}
    meta = write_dataset(args.out, split_by_fraction(ids, 0.05, 0.05), meta)
    chars = sum(len(text) for _, text in docs)
    print(f"{args.out}: " + ", ".join(f"{k} {v:,} tokens" for k, v in meta["tokens"].items()) +
          f"; {len(docs)} documents, {chars:,} characters ({chars / len(ids):.2f} per token)")


if __name__ == "__main__":
    main_guard(main)

"""
SentencePiece subwords (the paper's subword baseline), trained here, offline, on the training split.

    python prepare/spm.py --input books/ --out data/books_spm --vocab 8192
    python prepare/spm.py --input pydocs --out data/pydocs_spm --vocab 8192

--input: a text file, a folder of .txt files, a zip, or 'pydocs'. Split: 90 / 5 / 5 % of the
characters in order, the same bytes as prepare/bytes.py and prepare/equal_info.py give. The model is
a unigram one (as T5's) trained on the train split only, lossless (tokens/spm.py); each token
stores the bytes it stands for, so train.py reports bits per byte. Needs: pip install sentencepiece
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
from dataset import DatasetError, write_dataset
from prepare.common import parse_args, prepare_command
from texts import input_text, split_text
from tokens.spm import SentencePiece, library, train


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a text file, a folder of .txt files, a zip, or pydocs")
    p.add_argument("--out", default="data/spm", help="output folder")
    p.add_argument("--vocab", type=int, default=8192, help="vocabulary size (the paper's T5 model: 32k)")
    args = parse_args(p)
    library()  # first: without the package, fail before reading anything
    if not 260 <= args.vocab <= 65536:
        raise DatasetError(f"--vocab {args.vocab}: use 260 .. 65536 (room for the 256 byte pieces, and uint16)")
    text = input_text(args.input)
    texts = {split: data.decode("utf-8") for split, data in split_text(text).items()}
    try:
        model = train((line for line in texts["train"].split("\n") if line), args.vocab)
    except RuntimeError as e:  # e.g. a vocabulary larger than the text allows
        raise DatasetError(f"SentencePiece could not train on {args.input}: {str(e).strip().splitlines()[-1][:150]}; "
                           f"give more text or a smaller --vocab")
    tok = SentencePiece(SentencePiece.facts(model))
    lengths = tok.byte_lengths()
    splits, counts, seconds = {}, {}, {"encode": 0.0, "decode": 0.0}
    for split, part in texts.items():
        start = time.time()
        ids = tok.encode(part)
        middle = time.time()
        back = tok.decode(ids)
        seconds["encode"] += middle - start
        seconds["decode"] += time.time() - middle
        if back != part or lengths[ids].sum() != len(part.encode("utf-8")):
            raise DatasetError(f"the {split} text does not survive SentencePiece unchanged (it may hold the "
                               f"character U+2581, which SentencePiece reads as a space); remove it from the input")
        splits[split], counts[f"{split}.bytes.bin"] = ids, lengths[ids].astype(np.uint8)
    n_bytes = sum(int(c.sum(dtype=np.int64)) for c in counts.values())
    meta = dict(tok.meta, source=args.input, prepare=prepare_command("spm", p, args),
                byte_counts={"dtype": "uint8", "tokens_per_count": 1},
                bytes_per_token=n_bytes / sum(map(len, splits.values())),
                bytes_per_second={k: round(n_bytes / max(v, 1e-6)) for k, v in seconds.items()})
    meta = write_dataset(args.out, splits, meta, counts)
    print(f"{args.out}: " + ", ".join(f"{k} {v:,} tokens" for k, v in meta["tokens"].items()) +
          f"; vocabulary {meta['vocab_size']:,}, {meta['bytes_per_token']:.3f} bytes per token; "
          f"{meta['bytes_per_second']['encode']:,} bytes/s encoding, {meta['bytes_per_second']['decode']:,} decoding")


if __name__ == "__main__":
    main_guard(main)

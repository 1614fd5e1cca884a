"""
text8: characters of English Wikipedia, 27 symbols (space, a-z). The paper's text dataset.

    python prepare/text8.py                      # download text8.zip (31 MB) and build data/text8
    python prepare/text8.py --input text8.zip    # offline: a local text8.zip, text8, or any .txt
    python prepare/text8.py --input books/ --out data/books   # a folder of .txt files

Any input is normalised the way text8 was made (Mahoney's wikifil.pl): lowercase, digits spelled
out ("1984" -> " one nine eight four "), every other non-letter to a space, runs of spaces to one
(tokens/chars.py). Split: 90% / 5% / 5% in order, which for text8 is the standard first 90M /
next 5M / last 5M.
"""
import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
from errors import main_guard
from dataset import DatasetError, write_dataset
from prepare.common import download, parse_args, prepare_command
from texts import read_documents, split_by_fraction
from tokens.chars import Chars, encode, normalize

# https first; the plain-http copy (the host's original address) is as safe, as the file must match its
# published size and sha256
URLS = ("https://mattmahoney.net/dc/text8.zip", "http://mattmahoney.net/dc/text8.zip")
SIZE, SHA256 = 31_344_016, "a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232"


def read_input(path):
    """Text from a text8.zip, a text file, or a folder of .txt files (joined in name order)."""
    return "\n".join(text for _, text in read_documents(path))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="local text8.zip, text8, .txt file or folder (skips the download)")
    p.add_argument("--out", default="data/text8", help="output folder")
    p.add_argument("--cache", default="data/downloads", help="where the download is kept")
    args = parse_args(p)
    path = args.input or download(URLS, os.path.join(args.cache, "text8.zip"), SIZE, SHA256)
    text = normalize(read_input(path))
    if not text.strip():
        raise DatasetError(f"{path} holds no letters after normalisation; pass English text")
    splits = split_by_fraction(encode(text), 0.05, 0.05)  # for text8: the standard 90M / 5M / 5M
    meta = dict(Chars.facts(), source=args.input or URLS[0], prepare=prepare_command("text8", p, args))
    meta = write_dataset(args.out, splits, meta)
    print(f"{args.out}: " + ", ".join(f"{k} {v:,} chars" for k, v in meta["tokens"].items()))


if __name__ == "__main__":
    main_guard(main)

"""
pydocs: the offline quick-start dataset. English prose that exists wherever Python does.

    python prepare/pydocs.py            # -> data/pydocs (train.py also builds it on first use)

The docstrings of the Python standard library's modules, classes and functions (read from the
source with `ast`, nothing is imported) plus the language reference topics in `pydoc_data`,
normalised to text8's 27-symbol alphabet exactly as prepare/text8.py does (tokens/chars.py). About 1.9 million
characters; the exact text depends on the Python version. Split 90% / 5% / 5% in file order.
"""
import argparse
import os
import sys
import sysconfig

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
from errors import main_guard
from dataset import DatasetError, write_dataset
from prepare.common import parse_args
from texts import collect, split_by_fraction
from tokens.chars import Chars, encode, normalize


def build(out_dir="data/pydocs"):
    text = normalize(collect())
    if len(text) < 100_000:
        raise DatasetError(f"only {len(text)} characters of documentation found in this Python; "
                           "use prepare/text8.py --input with any English text instead")
    cmd = "python prepare/pydocs.py" + ("" if out_dir == "data/pydocs" else f" --out {out_dir}")
    meta = dict(Chars.facts(), source=f"Python {sysconfig.get_python_version()} standard library docstrings", prepare=cmd)
    return write_dataset(out_dir, split_by_fraction(encode(text), 0.05, 0.05), meta)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/pydocs")
    meta = build(parse_args(p).out)
    print(", ".join(f"{k} {v:,} chars" for k, v in meta["tokens"].items()))


if __name__ == "__main__":
    main_guard(main)

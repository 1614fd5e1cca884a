"""
excerpt: the start of a text as one UTF-8 .txt file, a small input for a quick run of the byte-level
scripts (prepare/bytes.py, prepare/spm.py, prepare/equal_info.py, whose coder compresses a few kB per second).

    python prepare/excerpt.py --input pydocs --out data/pydocs_300k.txt       # the first 300,000 characters
    python prepare/excerpt.py --input books/ --chars 1000000 --out data/books_1m.txt

--input as those scripts take it: a text file, a folder of .txt files, a zip, or 'pydocs' (Python's
own docstrings, offline). The excerpt ends at the last line break within --chars characters (at
--chars itself if there is none), so no word is cut. A file already at --out is left alone when it
holds this very excerpt, and replaced only with --overwrite.
"""
import argparse
import os
import sys

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
from errors import UserError, main_guard
from outputs import check_file, check_not_input, write_atomically
from prepare.common import one_line
from texts import input_text


def excerpt(text, chars):
    """The first `chars` characters of text, cut back to the last line break among them (kept), if any."""
    head = text[:chars]
    end = head.rfind("\n") + 1
    return head[:end] if end and len(text) > chars else head


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a text file, a folder of .txt files, a zip, or pydocs")
    p.add_argument("--out", required=True, help="the .txt file to write")
    p.add_argument("--chars", type=int, default=300_000, help="at most this many characters (default 300,000)")
    p.add_argument("--overwrite", action="store_true", help="--out may replace a file that holds something else")
    args = one_line(p).parse_args()
    if args.chars < 1:
        raise UserError(f"--chars {args.chars}: give a number of characters from 1 up")
    check_not_input(args.out, {"--input": args.input})
    data = excerpt(input_text(args.input), args.chars).encode("utf-8")
    if os.path.isfile(args.out) and not os.path.islink(args.out):
        with open(args.out, "rb") as f:
            if f.read() == data:
                print(f"{args.out} already holds this excerpt ({len(data):,} bytes): left as it is")
                return
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.exists(folder):  # data/ on a fresh clone, as the dataset scripts make it
        try:
            os.makedirs(folder)
        except OSError:
            pass  # check_file names what is in the way
    check_file(args.out, True, "--out")  # never a checkpoint or a dataset's file, and a place that can be written
    if os.path.lexists(args.out) and not args.overwrite:
        raise UserError(f"{args.out} exists and holds something else; replace it with --overwrite, or pick another --out")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    write_atomically(args.out, write)
    print(f"{args.out}: {len(data):,} bytes, the first {len(data.decode('utf-8')):,} characters of {args.input}")


if __name__ == "__main__":
    main_guard(main)

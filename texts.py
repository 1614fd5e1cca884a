"""
Where a text comes from, for the datasets made of text (characters, BPE, bytes, SentencePiece,
Equal-Info): a file, a folder of .txt files or a zip, or 'pydocs', the docstrings of Python's own
standard library (no download); and the one way a text is split into train / val / test, so that
every tokenizer of one text trains and is scored on the same bytes.
"""
import ast
import glob
import os
import re
import sys
import sysconfig
import zipfile

from dataset import DatasetError


def read_documents(path, not_utf8="warn"):
    """[(name, text)] from a text file, a folder of .txt files, or a zip. Bytes that are not UTF-8 are
    refused (not_utf8="refuse": datasets that must keep every byte) or, with one warning that counts
    them, read as U+FFFD (not_utf8="warn")."""
    bad = []  # (name, bytes that are not UTF-8, offset of the first)
    docs = [(name, decode_utf8(data, name, bad)) for name, data in read_files(path)]
    if bad and not_utf8 == "refuse":
        name, n, first = bad[0]
        raise DatasetError(f"{name} is not UTF-8 text ({n:,} byte(s) are not, the first at offset {first:,}); every "
                           f"byte is kept here: convert it (e.g. iconv -f latin1 -t utf-8) or leave it out")
    if bad:
        print(f"warning: {sum(n for _, n, _ in bad):,} byte(s) of {len(bad)} file(s) are not UTF-8 (the first in "
              f"{bad[0][0]} at offset {bad[0][2]:,}); each was read as U+FFFD", file=sys.stderr)
    return docs


def decode_utf8(data, name, bad):
    """data as text; bytes that are not UTF-8 become U+FFFD, one each, and are counted into bad."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        first = e.start
    text = data.decode("utf-8", errors="surrogateescape")  # each such byte as one of U+DC80 .. U+DCFF
    text, n = re.subn("[\udc80-\udcff]", "\ufffd", text)
    bad.append((name, n, first))
    return text


def read_files(path):
    """[(name, bytes)] of a text file, a folder of .txt files (in name order), or a zip's text members."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True))
        if not files:
            raise DatasetError(f"no .txt files in {path}; pass a folder of UTF-8 .txt files")
        return [doc for f in files for doc in read_files(f)]
    if not os.path.exists(path):
        raise DatasetError(f"--input {path} does not exist")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
                names = [n for n in names if n.lower().endswith(".txt")] or names
                if not names:
                    raise DatasetError(f"{path} is an empty zip; pass text files")
                return [(n, z.read(n)) for n in sorted(names)]
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DatasetError(f"{path} is a corrupt zip ({e}); download it again")
    if path.lower().endswith(".zip"):
        raise DatasetError(f"{path} is not a valid zip (corrupt or truncated download); download it again")
    with open(path, "rb") as f:
        return [(os.path.basename(path), f.read())]


def input_text(path):
    """The text of --input for the byte-level datasets: a text file, a folder of .txt files or a zip
    (documents joined with a newline, in name order), or 'pydocs' (when no such file exists): the
    docstrings that prepare/pydocs.py normalises, as they are. Every byte is kept: input that is not
    UTF-8 (or holds no text) is refused."""
    text = collect() if path == "pydocs" and not os.path.exists(path) else \
        "\n".join(text for _, text in read_documents(path, not_utf8="refuse"))
    if not text.strip():
        raise DatasetError(f"{path} holds no text; pass UTF-8 text files")
    if "\x00" in text:  # valid UTF-8, but no text: a dataset's .bin tokens, say
        raise DatasetError(f"{path} holds zero bytes, which text does not: it looks like binary data (a dataset's "
                           f".bin tokens?); pass UTF-8 text files")
    return text


def split_text(text, val_frac=0.05, test_frac=0.05):
    """{split: UTF-8 bytes}: contiguous, in order, by characters, so that every tokenizer of one text
    (bytes, SentencePiece, Equal-Info) trains and is scored on exactly the same bytes."""
    return {split: part.encode("utf-8") for split, part in split_by_fraction(text, val_frac, test_frac).items()}


def split_by_fraction(ids, val_frac, test_frac=0.0):
    """Contiguous train / val / test split: no window straddles two splits."""
    n = len(ids)
    n_val, n_test = int(n * val_frac), int(n * test_frac)
    n_train = n - n_val - n_test
    if not n_val or not n_train:  # now, before the work of tokenizing or coding them
        raise DatasetError(f"the input is too short to split: {n:,} items leave the {'val' if n_train else 'train'} "
                           f"split empty; give more input data")
    splits = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val]}
    if n_test:
        splits["test"] = ids[n_train + n_val:]
    return splits


# The raw text of the pydocs corpus: prepare/pydocs.py normalises it to characters, the byte-level
# scripts take it as it is (--input pydocs).
SKIP = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "__pycache__"}


def docstrings(path):
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return []
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return [d for d in (ast.get_docstring(n) for n in nodes) if d]


def collect():
    """Docstrings of every stdlib source file (sorted, so the order is stable) and pydoc topics."""
    root = sysconfig.get_paths()["stdlib"]
    parts = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in sorted(files):
            if name.endswith(".py"):
                parts.extend(docstrings(os.path.join(folder, name)))
    try:
        from pydoc_data.topics import topics
        parts.extend(topics[k] for k in sorted(topics))
    except ImportError:  # some distributions strip pydoc_data
        pass
    return "\n".join(parts)

"""
What the prepare scripts share: reading inputs, splits, downloads, and the command that rebuilds
a dataset. The dataset format itself is in dataset.py; the tokens of each kind in tokens/.
"""
import ast
import glob
import hashlib
import os
import re
import sys
import sysconfig
import time
import urllib.request
import zipfile

from dataset import DatasetError
from outputs import check_dataset_folder


def parse_args(parser):
    """The command line of a prepare script, with its --out checked before any work: a new folder, or a
    dataset this project wrote there (outputs.check_dataset_folder)."""
    args = parser.parse_args()
    check_dataset_folder(args.out)
    return args


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


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(urls, dest, expected_size=None, sha256=None, retries=3, chunk=1 << 20):
    """Download dest from the first of urls (one or several: mirrors, https before http) that works, with a
    progress bar and retries; keep nothing partial. The file must have the size the server announces, and
    expected_size and sha256 where the script records them (the published values), so a truncated,
    corrupt or changed file is never used. A file already at dest is checked the same way."""
    from tqdm import tqdm
    urls = [urls] if isinstance(urls, str) else list(urls)

    def problem(path):
        """Why the file at path is not the published one, or None."""
        if expected_size and os.path.getsize(path) != expected_size:
            return f"{os.path.getsize(path)} bytes, not {expected_size}"
        if sha256 and sha256_of(path) != sha256:
            return "its sha256 differs from the published one"
        return None

    if os.path.exists(dest):
        why = problem(dest)
        if not why:
            return dest
        print(f"{dest} is not the published file ({why}): downloading it again", file=sys.stderr)
        os.remove(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    for attempt in range(1, retries + 1):
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=30) as r, open(part, "wb") as f:
                    total = int(r.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dest)) as bar:
                        while block := r.read(chunk):
                            f.write(block)
                            bar.update(len(block))
                got = os.path.getsize(part)
                if total and got != total:
                    raise IOError(f"truncated download: got {got} bytes, the server announced {total}")
                why = problem(part)
                if why:
                    raise IOError(f"got a file that is not the published one: {why}")
                os.replace(part, dest)
                return dest
            except Exception as e:  # network errors come in many types; all get the same retry
                error = e
                print(f"download from {url} failed ({e})", file=sys.stderr)
            finally:
                if os.path.exists(part):
                    os.remove(part)
        if attempt < retries:
            print(f"retry {attempt}/{retries - 1} in {2 ** attempt}s", file=sys.stderr)
            time.sleep(2 ** attempt)
    raise DatasetError(f"could not download {urls[0]} ({error}); without network, download it "
                       f"elsewhere and pass the file with --input")


def prepare_command(script, parser, args):
    """The command that rebuilds this dataset, saved in meta.json: the script and what was given."""
    given = [f"--{k} {v}" for k, v in vars(args).items() if v is not None and v != parser.get_default(k)]
    return " ".join([f"python prepare/{script}.py"] + given)


def warn_skipped(skipped, what):
    """One warning line for files that could not be used: how many, and the first few reasons."""
    if skipped:
        print(f"warning: skipped {len(skipped)} {what}: " + "; ".join(skipped[:5]) +
              (" ..." if len(skipped) > 5 else ""), file=sys.stderr)


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

"""
What the prepare scripts share: reading inputs, splits, downloads, and the command that rebuilds
a dataset. The dataset format itself is in dataset.py; the tokens of each kind in tokens/.
"""
import hashlib
import os
import sys
import time
import urllib.request

from dataset import DatasetError
from outputs import check_dataset_folder, check_not_input

INPUTS = ("input", "regroup", "m1")  # the settings of prepare scripts that name what they read


def one_line(parser):
    """argparse's errors as this project's: one line that names the problem and --help, exit 1 (argparse's own:
    its usage, then the problem, exit 2)."""
    def error(message):
        sys.exit(f"error: {message}; see python {os.path.relpath(sys.argv[0])} --help")
    parser.error = error
    return parser


def parse_args(parser):
    """The command line of a prepare script, with its --out checked before any work: a new folder, or a
    dataset this project wrote there by this script (outputs.check_dataset_folder), and none of its inputs."""
    args = one_line(parser).parse_args()
    check_not_input(args.out, {f"--{k}": getattr(args, k, None) for k in INPUTS})
    check_dataset_folder(args.out, script=os.path.basename(sys.argv[0]))
    return args


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



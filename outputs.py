"""
Where the scripts write, and the one rule for it: nothing a user owns is ever replaced. Each
script checks its output paths here before any work (a one-line error naming the path, the
problem and the fix), then writes through a temporary name and a rename.

- A file (sample.py's sample, decode.py's text and report, compare.py's summary, a plot) is never
  written over a checkpoint (*.pt and the like) or a dataset's files (a .bin file, anything in a
  dataset's folder), nor over any other file that exists unless the user says --overwrite=True.
- A dataset folder (prepare/*.py --out) is written where nothing is yet, or over a dataset that
  this project wrote there (meta.json from dataset.write_dataset, and no file a dataset does not
  have) of the same kind (made by the same prepare script, of the same tokens), which it replaces whole.
- An input is never an output: --out is not an input, nor inside an input's folder, nor holds one.
- What an interrupted write leaves behind is known by the marker file it wrote inside, never by its
  name: a folder the user named data/books.old-2019 is theirs.
- The place must be one that can be written: a folder (not a file), with write permission.
"""
import json
import os
import re

from errors import UserError, reason

CHECKPOINT_SUFFIXES = ('.pt', '.pth', '.ckpt', '.safetensors')  # ours are ckpt.pt; never written over
DATASET_META = 'meta.json'
WRITE_MARKER = '.written_by_prepare.json'  # inside a dataset folder being written or set aside (dataset.write_dataset)


def is_dataset(folder):
    """Whether folder holds a dataset that dataset.write_dataset wrote: its meta.json, with the fields
    every such meta.json has (a version and the token counts)."""
    meta = read_dataset_meta(folder)
    return meta is not None and 'version' in meta and isinstance(meta.get('tokens'), dict)


def dataset_around(path):
    """The dataset folder that path is in or is (itself, or any folder above it), or None: an output never goes there."""
    folder = os.path.abspath(path)
    while True:
        if os.path.isdir(folder) and is_dataset(folder):
            return folder
        if os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)


def dataset_file(name):
    """Whether a file of this name belongs in a dataset's folder (meta.json, and tokens and counts in .bin files)."""
    return name in (DATASET_META, WRITE_MARKER) or name.endswith('.bin')


def read_dataset_meta(folder):
    """The meta.json of a dataset folder as a dict, or None."""
    try:
        with open(os.path.join(folder, DATASET_META), encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def made_by(meta):
    """The prepare script that made a dataset ('tones.py'), from the command in its meta.json's 'prepare', or None."""
    command = meta.get('prepare') if isinstance(meta, dict) else None
    script = re.match(r"python prepare/(\w+\.py)", command) if isinstance(command, str) else None
    return script and script.group(1)


def other_kind(folder, script=None, tokenizer=None):
    """How the dataset in folder is of another kind than one that `script` makes of `tokenizer` tokens (each compared
    where both are known), in a few words; None if it is not."""
    meta = read_dataset_meta(folder) or {}
    if script and made_by(meta) and made_by(meta) != script:
        return f"made by prepare/{made_by(meta)}, not prepare/{script}"
    if tokenizer and meta.get('tokenizer') and meta['tokenizer'] != tokenizer:
        return f"of {meta['tokenizer']} tokens, not {tokenizer}"
    return None


def protected(path):
    """Why the file at path is never written, even with --overwrite=True (a checkpoint, a dataset's file), or None."""
    for p in {os.path.abspath(path), os.path.realpath(path)}:
        folder, name = os.path.split(p)
        if os.path.exists(os.path.join(folder, DATASET_META)):
            return f"it is in a dataset's folder ({folder})"
        if os.path.exists(p) and name.lower().endswith(CHECKPOINT_SUFFIXES):
            return "it is a checkpoint"
        if os.path.exists(p) and name.lower().endswith('.bin'):
            return "it is a .bin file, as a dataset's tokens are"
        if run_log(p):
            return "it is a run's log.jsonl"
    return None


def run_log(path):
    """Whether the file at path is a log train.py wrote: its first line a run's header (the config and argv)."""
    try:
        with open(path, encoding='utf-8') as f:
            header = json.loads(f.readline(1 << 20))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and {'config', 'argv'} <= set(header)


def check_place(folder, path, setting):
    """The folder that path goes in exists, is a folder, and can be written; a one-line error if not."""
    if not os.path.exists(folder):
        up = folder
        while up and not os.path.exists(up):
            up = os.path.dirname(up)
        if up and not os.path.isdir(up):
            raise UserError(f"cannot write {path}: {up} is a file, not a folder; pick another {setting}")
        raise UserError(f"cannot write {path}: the folder {folder} does not exist; create it or pick another {setting}")
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {path}: {folder} is a file, not a folder; pick another {setting}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: the folder {folder} is not writable; pick another {setting}")


def check_file(path, overwrite=False, setting='--output'):
    """A one-line error, before any work, if the file path may not be written: see the module's rule."""
    if not path:
        raise UserError(f"{setting} is empty; give a file name")
    if os.path.isdir(path):
        raise UserError(f"cannot write {path}: it is a folder; pick another {setting}")
    why = protected(path)
    if why:
        raise UserError(f"will not write {path}: {why}; pick another {setting}")
    check_place(os.path.dirname(os.path.abspath(path)), path, setting)
    if os.path.lexists(path):
        if not os.path.isfile(path):
            raise UserError(f"cannot write {path}: it is not a regular file; pick another {setting}")
        if not overwrite:
            raise UserError(f"{path} exists; replace it with --overwrite=True, or pick another {setting}")


def write_atomically(path, write):
    """write(tmp) writes the file at a temporary name; it takes the name `path` only when complete. Whether
    path may be written at all is check_file's to say, before the work; here only what changed since."""
    if os.path.isdir(path) or protected(path):
        check_file(path, overwrite=True)  # raises, naming why
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, or the folder made read-only meanwhile
        raise UserError(f"could not write {path} ({reason(e, 80)}); free some space or pick another path")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def check_dataset_folder(path, script=None, tokenizer=None):
    """prepare/*.py --out: a one-line error, before any work, unless path is free or holds a dataset of this
    project and nothing else, of the same kind (other_kind: made by `script`, e.g. 'tones.py', of `tokenizer`
    tokens, where known), which is then replaced whole; in a place that can be written."""
    if not path:
        raise UserError("--out is empty; give a folder, e.g. data/<name>")
    folder = os.path.abspath(path)
    if os.path.islink(folder):  # the swap would replace the link, not the dataset it points to
        raise UserError(f"--out {path} is a symbolic link; give the folder it points to ({os.path.realpath(path)})")
    fix = "nothing but a dataset is replaced: give a new folder, e.g. data/<name>"
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"--out {path} is a file; {fix}")
    if os.path.exists(folder) and not is_dataset(folder):
        raise UserError(f"--out {path} is a folder that holds no dataset of this project (no {DATASET_META} that a "
                        f"prepare script wrote); {fix}")
    if os.path.exists(folder):
        foreign = sorted(n for n in os.listdir(folder) if not (dataset_file(n) and os.path.isfile(os.path.join(folder, n))))
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise UserError(f"--out {path} holds {foreign[0]}{more}, which a dataset does not have; rebuilding replaces "
                            f"the whole folder: move {'them' if more else 'it'} out, or give a new folder")
        other = other_kind(folder, script, tokenizer)
        if other:
            raise UserError(f"--out {path} holds a dataset of another kind ({other}), and a dataset is replaced only by "
                            f"one of its kind; give a new folder, e.g. data/<name>")
    parent = os.path.dirname(folder)
    while not os.path.exists(parent):  # made when the dataset is written
        parent = os.path.dirname(parent)
    check_place(parent, path, '--out')


def check_not_input(out, inputs, setting='--out'):
    """An input is never an output: a one-line error, before any work, when the path `out` is one of `inputs`
    ({setting: path}, None for a setting not given), lies inside one (an input folder), or holds one."""
    if not out:
        return
    target = os.path.realpath(out)
    for name, given in inputs.items():
        if not given or not os.path.exists(given):  # 'pydocs' and other names that are no path
            continue
        source = os.path.realpath(given)
        if os.path.exists(out) and os.path.samefile(out, given):  # a hard link to it too
            target = source
        if target == source or target.startswith(source.rstrip(os.sep) + os.sep):
            where = "is" if target == source else "is inside"
            raise UserError(f"{setting} {out} {where} {name} {given}: an input is never written; pick another {setting}")
        if source.startswith(target.rstrip(os.sep) + os.sep):
            raise UserError(f"{setting} {out} holds {name} {given}, which writing it would replace; pick another {setting}")


FIGURE_SUFFIXES = ('.png', '.pdf', '.svg')


def check_figure(path, overwrite=False, setting='--output'):
    """check_file for a plot, whose name must also say a format that matplotlib writes."""
    if os.path.splitext(path)[1].lower() not in FIGURE_SUFFIXES:
        raise UserError(f"{setting}={path}: a plot is written as {', '.join(FIGURE_SUFFIXES)}; name it x.png")
    check_file(path, overwrite, setting)


def save_figure(fig, path, dpi=110):
    """A matplotlib figure written atomically, in the format its name says (check_figure)."""
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format=os.path.splitext(path)[1][1:].lower(), dpi=dpi))

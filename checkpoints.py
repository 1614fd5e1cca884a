"""
A run's folder and its checkpoint: out_dir claimed by a lock before anything is written there,
checkpoints written atomically and read with one-line errors (plain tensors only), and another run's
weights loaded into a model that must fit them (SUPRA's conversion adds only its phi layers).
"""
import json
import os
import pickle
import sys
from contextlib import contextmanager, suppress

import torch

from errors import ConfigError, UserError, reason
from model import GPTConfig
from outputs import DATASET_META, dataset_around, run_log

try:
    import fcntl
except ImportError:  # Windows: no flock, so there out_dir is not locked (see claim_out_dir)
    fcntl = None


def save_checkpoint(path, state):
    """Write through a temporary file and a rename: the previous checkpoint stays whole until the
    new one is complete, and a failed write (a full disk) leaves nothing behind."""
    tmp = path + '.tmp'
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a failed write as a RuntimeError
        raise UserError(f"could not write {path} ({reason(e, 80)}); is the disk full? Free some "
                        f"space and go on with --init_from=resume (the previous checkpoint, if any, is intact)")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


LOCK_FILE, CHECKPOINT, LOG = 'train.lock', 'ckpt.pt', 'log.jsonl'
LOCK_TEXT = 'the run with pid'  # how a lock file of a run begins


def check_new_log(path, overwrite=False):
    """A new run writes log.jsonl afresh: a one-line error, before anything is written, where that would lose what is
    there: a file that train.py did not write (its first line is no run header), whatever overwrite says; or a run's
    evaluations past its first (the run's checkpoint gone: deleted to save space, say), unless overwrite."""
    if not os.path.lexists(path):
        return
    if not run_log(path):
        raise ConfigError(f"{path} exists and is not a log that train.py wrote; move it, or use another out_dir")
    try:
        with open(path, encoding='utf-8') as f:
            f.readline()  # the header
            records = [line for line in f if line.strip()]
        trained = False
        for i, line in enumerate(records):
            try:
                trained = trained or json.loads(line).get('iter') != 0
            except ValueError:
                trained = trained or i < len(records) - 1  # a torn last line (a write cut short) holds nothing
    except (OSError, ValueError, AttributeError):  # not text, not JSON lines
        trained = True
    if trained and not overwrite:
        raise ConfigError(f"{path} holds the log of a run whose checkpoint is gone; replace it with --overwrite=True, "
                          f"or use another out_dir")




@contextmanager
def claim_out_dir(out_dir):
    """Hold out_dir for this run, which also proves it can be written: a second run on it stops with a
    one-line error naming this one. The lock is the operating system's, so it ends with the process,
    even on kill -9. A partial checkpoint (ckpt.pt.tmp) that a killed run left in out_dir is removed."""
    if os.path.isfile(os.path.join(out_dir, DATASET_META)):
        raise ConfigError(f"out_dir={out_dir!r} is a dataset's folder; give the run a folder of its own, e.g. out/<name>")
    if dataset_around(out_dir):
        raise ConfigError(f"out_dir={out_dir!r} is in a dataset's folder ({dataset_around(out_dir)}); give the run a "
                          f"folder of its own, e.g. out/<name>")
    path = os.path.join(out_dir, LOCK_FILE)
    made, up = [], os.path.abspath(out_dir)  # the folders this claim creates: removed again if left empty
    while not os.path.exists(up):
        made.append(up)
        up = os.path.dirname(up)
    try:
        os.makedirs(out_dir, exist_ok=True)
        while True:
            f = open(path, 'a+')
            try:
                if fcntl:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or 'another run'
                f.close()
                raise ConfigError(f"out_dir={out_dir!r} is in use by {holder}; wait for it to end, or use another out_dir")
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                break
            f.close()  # the run before us removed the file between our open and our lock: take the new one
        f.seek(0)
        if f.read(len(LOCK_TEXT)) not in ('', LOCK_TEXT):  # a file of the user's of that name: not ours to empty
            f.close()
            raise ConfigError(f"{path} is not a lock of this project; move it, or use another out_dir")
        f.truncate(0)
        f.write(f"{LOCK_TEXT} {os.getpid()} ({' '.join(sys.argv)[:120]})")
        f.flush()
        if not fcntl:
            f.close()  # no lock to hold: the file only says who runs here
    except OSError as e:
        raise ConfigError(f"cannot write in out_dir={out_dir!r} ({e.strerror}); use a folder you can write to")
    partial = os.path.join(out_dir, CHECKPOINT + '.tmp')
    if partial_checkpoint(partial):
        with suppress(FileNotFoundError):
            os.remove(partial)
    try:
        yield
    finally:
        with suppress(FileNotFoundError):  # out_dir may have been deleted meanwhile
            os.remove(path)  # before unlocking: the next run never locks a file that is no longer the lock
        f.close()
        for folder in made:  # a run that stopped before writing anything leaves no empty out_dir behind
            with suppress(OSError):
                os.rmdir(folder)


def partial_checkpoint(path):
    """Whether path is what save_checkpoint of a killed run left: empty, or the start of torch.save's archive for
    ckpt.pt (its first record is named ckpt.pt/...). A file of the user's of that name is left alone."""
    try:
        with open(path, 'rb') as f:
            head = f.read(64)
    except OSError:
        return False
    return head == b'' or (head.startswith(b'PK\x03\x04') and CHECKPOINT.encode() + b'/' in head)


def end_at_a_line(path):
    """Before a resumed run appends to its log: a torn last line (a write cut short by a full disk or a kill)
    holds no whole record; cut it off, so that the next record starts a line of its own."""
    with open(path, 'rb+') as f:
        data = f.read()
        if data and not data.endswith(b'\n'):
            f.truncate(data.rfind(b'\n') + 1)


def not_a_checkpoint(path):
    """Why the file at path cannot be a checkpoint that torch.save wrote (its archives start 'PK'), or None: what a
    new run's --overwrite=True may replace is a checkpoint, never a file of the user's that has its name."""
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError as e:
        return reason(e, 60)
    return None if head == b'PK\x03\x04' else "it does not start as a file that torch.save wrote"


CHECKPOINT_KEYS = {'model', 'model_args', 'meta'}



def checkpoint_problem(ckpt):
    """What makes a loaded file something other than a checkpoint of this project, or None."""
    if not isinstance(ckpt, dict) or not CHECKPOINT_KEYS <= set(ckpt):
        return f"it has no {', '.join(sorted(CHECKPOINT_KEYS))}"
    weights = ckpt['model']
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return "its 'model' is not a table of weights"
    meta, args = ckpt['meta'], ckpt['model_args']
    if not isinstance(meta, dict) or not isinstance(args, dict) or meta.get('vocab_size') != args.get('vocab_size'):
        return "its model and its dataset facts ('meta') do not have one vocabulary"
    return None


def load_checkpoint(path):
    """A checkpoint of this project, loaded with weights_only=True (plain tensors and types only)."""
    if not os.path.exists(path):
        raise ConfigError(f"no checkpoint at {path}; train one with train.py, or name the folder of a run that has one "
                          f"(a run's ckpt.pt is not kept in the repository)")
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a folder, not a checkpoint file")
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated, empty, random bytes, or pickled objects we do not load
        # torch's text for an UnpicklingError advises weights_only=False, which would run any code in the file
        why = 'not plain weights' if isinstance(e, pickle.UnpicklingError) else reason(e, 80)
        raise ConfigError(f"{path} is not a readable checkpoint ({why}); it may be "
                          f"truncated or from another program: train again, or use another out_dir")
    problem = checkpoint_problem(ckpt)
    if problem:
        raise ConfigError(f"{path} is not a checkpoint of this project, or is damaged ({problem}); train again, "
                          f"or use another out_dir")
    try:
        GPTConfig(**ckpt['model_args'])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path} holds a model this code cannot build ({e}); it may be from a newer version")
    return ckpt


def load_model_state(model, state, source='the checkpoint'):
    """Load weights, also from checkpoints of a torch.compile'd model (keys prefixed '_orig_mod.')."""
    try:
        model.load_state_dict({k.removeprefix('_orig_mod.'): v for k, v in state.items()})
    except RuntimeError as e:  # missing, unexpected or misshapen tensors
        raise ConfigError(f"the weights in {source} do not fit the model it describes ({reason(e, 120)}); it is "
                          f"damaged: train again, or use another out_dir")


def pretrained_problems(model, state):
    """Why another run's weights `state` do not fit `model` ('' if they do): every tensor of the checkpoint must be
    used, unchanged in shape, and the only tensors the model has beyond them are those a conversion adds
    (model.converted_tensors()). Works on models built on the 'meta' device too (shapes only)."""
    state = {k.removeprefix('_orig_mod.'): v for k, v in state.items()}
    own = model.state_dict()
    new = own.keys() - state.keys()
    problems = [f"unused: {', '.join(sorted(state.keys() - own.keys())[:3])}" if state.keys() - own.keys() else '',
                f"new beyond a conversion's: {', '.join(sorted(new - model.converted_tensors())[:3])}"
                if new - model.converted_tensors() else '',
                ', '.join(f"{k} is {tuple(state[k].shape)}, not {tuple(own[k].shape)}"
                          for k in sorted(state.keys() & own.keys()) if state[k].shape != own[k].shape)[:200]]
    return '; '.join(p for p in problems if p)


CONVERSION_HINT = "a conversion keeps every other setting of the source (position='rope' for attention='linear')"



def load_pretrained(model, state, source, contradicted=''):
    """Load another run's weights, which must fit (pretrained_problems). Returns the tensors a conversion added.
    contradicted: the model settings given that differ from the source's (settings.contradicted), named first."""
    problems = pretrained_problems(model, state)
    if problems and contradicted:
        raise ConfigError(f"{source} does not fit: the settings say {contradicted}; drop those settings (a conversion "
                          f"takes the source's model, but for attention) or start from another checkpoint")
    if problems:
        raise ConfigError(f"{source} does not fit this model ({problems}); {CONVERSION_HINT}")
    state = {k.removeprefix('_orig_mod.'): v for k, v in state.items()}
    missing, _ = model.load_state_dict(state, strict=False)
    return sorted(missing)


def run_names(runs):
    """A short name per run folder that tells them apart: the shortest tail of their paths that differs."""
    parts = {run: os.path.normpath(run).split(os.sep) for run in runs}
    for n in range(1, max(map(len, parts.values())) + 1):
        names = {run: '/'.join(p[-n:]) for run, p in parts.items()}
        if len(set(names.values())) == len(runs):
            return names
    return {run: run for run in runs}

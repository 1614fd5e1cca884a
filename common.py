"""
What train.py, sample.py, bench.py and compare.py share, so that no script imports another:

- settings: each is declared once, in a dataclass with its default and its allowed values (the
  model's in model.GPTConfig, training's and the system's here, each script's own in the script).
  A script reads them from config files (plain assignments) and --key=value, checked by name,
  type and value before any work starts.
- a run's dataset (load_dataset) and the settings that depend on it (resolve_model), so that
  compare.py checks every variant as train.py will, before the first run;
- the device, the dtype, autocast, and memory: a model or a batch that cannot fit is a one-line
  error before any work;
- checkpoints: written atomically, read with one-line errors, and the rule that a run continued
  from a checkpoint keeps the checkpoint's model.
"""
import ast
import difflib
import os
import pickle
import re
import subprocess
import sys
import traceback
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np
import torch

from dataset import check_token_range, read_meta
from errors import UserError, reason
from model import GPT, GPTConfig, at_least, one_of, within
from outputs import DATASET_META

try:
    import fcntl
except ImportError:  # Windows: no flock, so there out_dir is not locked (see claim_out_dir)
    fcntl = None


class ConfigError(UserError):
    """A bad setting: the message names it and what to use instead."""


@dataclass
class SystemConfig:
    device: str = 'auto'          # 'auto' | 'cpu' | 'cuda' | 'cuda:1' | 'mps'
    dtype: str = 'auto'           # 'auto' (bfloat16 on GPUs that have it, else float16; float32 on CPU and mps) | 'float32' | 'bfloat16' | 'float16'
    seed: int = 1337

    def __post_init__(self):
        one_of(self, 'dtype', 'auto', 'float32', 'bfloat16', 'float16')
        if not 0 <= self.seed < 2 ** 63:  # what both numpy's and torch's generators take
            raise ValueError(f"seed={self.seed}: use a whole number from 0 to 2**63 - 1")


@dataclass
class TrainConfig:
    # I/O
    out_dir: str = 'out'
    init_from: str = 'scratch'    # 'scratch' | 'resume' (from out_dir/ckpt.pt) | another run's ckpt.pt: start from
                                  # its weights (e.g. convert softmax to attention='linear'), a new optimiser
    overwrite: bool = False       # a new run (not resume) may replace the checkpoint and log already in out_dir
    eval_interval: int = 250      # evaluate, log and checkpoint every this many iterations
    eval_iters: int = 20          # evaluation uses eval_iters * batch_size * world_size fixed windows per split
    eval_only: bool = False
    sample_tokens: int = 0        # print a sample of this many tokens at the end (text datasets)
    # data
    dataset: str = 'pydocs'       # data/<dataset>/; 'pydocs' is built offline on first use
    batch_size: int = 32          # sequences per process per micro-step
    gradient_accumulation_steps: int = 1
    overfit_single_batch: bool = False  # train on batch 0 forever: the quickest proof that the model learns
    # AdamW with linear warmup and cosine decay
    learning_rate: float = 1e-3
    max_iters: int = 5000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0        # 0: no clipping
    decay_lr: bool = True
    warmup_iters: int = 200
    lr_decay_iters: int = 0       # 0: max_iters
    min_lr: float = 1e-4
    compile: bool = False         # torch.compile the model (CUDA)

    def __post_init__(self):
        at_least(self, 1, 'eval_interval', 'eval_iters', 'batch_size', 'gradient_accumulation_steps')
        at_least(self, 0, 'max_iters', 'sample_tokens', 'warmup_iters', 'lr_decay_iters')
        if self.init_from not in ('scratch', 'resume') and not self.init_from.endswith('.pt'):
            raise ValueError(f"init_from={self.init_from!r}: use 'scratch', 'resume', or the path of a checkpoint (.pt)")
        within(self, 'learning_rate', 0.0, low_open=True)
        within(self, 'min_lr', 0.0, self.learning_rate)
        within(self, 'weight_decay', 0.0)
        within(self, 'beta1', 0.0, 1.0, high_open=True)
        within(self, 'beta2', 0.0, 1.0, high_open=True)
        within(self, 'grad_clip', 0.0)
        if not self.dataset or not self.out_dir:
            raise ValueError("dataset and out_dir must not be empty")


TRAIN = (TrainConfig, SystemConfig, GPTConfig)  # everything train.py reads
NOT_SETTINGS = {'vocab_size'}  # a GPTConfig field that comes from the dataset, not from the user
MODEL_KEYS = [f.name for f in fields(GPTConfig) if f.name not in NOT_SETTINGS]


def declared(groups):
    """{key: (group, field)} of the dataclasses `groups`; each key is declared in one group only."""
    out = {}
    for group in groups:
        for f in fields(group):
            if group is GPTConfig and f.name in NOT_SETTINGS:
                continue
            assert f.name not in out, f"setting {f.name} is declared twice"
            out[f.name] = (group, f)
    return out


def defaults(groups):
    return {k: f.default for k, (_, f) in declared(groups).items() if f.default is not MISSING}


def parse_value(key, text, want):
    """--key=text as a Python literal (1e-3, True, 'x'); a string setting keeps its text as it is."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = text  # a bare word: --wavelet=haar
    if want is float and type(value) is str:
        with suppress(ValueError):
            value = float(text)  # nan, inf: a float, which the setting's own check then judges
    return text if want is str and type(value) is not str else value


def set_value(config, key, value, where, known):
    if key not in known:
        close = difflib.get_close_matches(key, known, n=3)
        raise ConfigError(f"unknown setting {key!r} in {where}" + (f"; did you mean {' or '.join(close)}?" if close else "")
                          + " (--help lists every setting)")
    want = known[key][1].type
    if want is float and type(value) is int:
        value = float(value)
    if type(value) is not want:
        raise ConfigError(f"{key}={value!r} in {where} should be a {want.__name__} (default {known[key][1].default!r})")
    config[key] = value


def read_config_file(path):
    """The assignments of a config file: {name: value}, one-line errors for a file that is not one."""
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a folder; give a config file such as config/quickstart.py")
    if not os.path.exists(path):
        raise ConfigError(f"config file {path} does not exist; see config/ for examples")
    try:
        with open(path, encoding='utf-8') as f:
            source = f.read()
        scope = {}
        exec(compile(source, path, 'exec'), {}, scope)
    except SyntaxError as e:
        raise ConfigError(f"{path}, line {e.lineno}: {e.msg}; a config file is plain assignments like n_layer = 4")
    except (Exception, SystemExit) as e:  # NameError and friends: the line in the file that raised it
        line = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == path]
        raise ConfigError(f"{path}{f', line {line[-1]}' if line else ''}: {type(e).__name__}: {e}; "
                          f"a config file is plain assignments like wavelet = 'haar'")
    return {k: v for k, v in scope.items() if not k.startswith('_')}


def parse_config(argv, groups, doc=''):
    """
    Settings from the defaults of the dataclasses `groups`, then config files (plain assignments),
    then --key=value, checked by name, type and allowed values. Returns (config, given): the
    settings as one dict, and the set of keys that a file or the command line set.
    """
    known = declared(groups)
    if any(a in ('-h', '--help') for a in argv):
        print((doc.strip() + '\n\n' if doc else '') + 'Settings (--key=value; a config file sets the same names):')
        for key, (group, f) in known.items():
            print(f"  {key} = {f.default!r}")
        raise SystemExit(0)
    config, given = defaults(groups), set()
    for arg in argv:
        if arg.startswith('--'):
            key, eq, text = arg[2:].partition('=')
            if not eq:
                raise ConfigError(f"{arg}: write --{key}=value")
            set_value(config, key, parse_value(key, text, known[key][1].type if key in known else str), arg, known)
            given.add(key)
        else:
            for key, value in read_config_file(arg).items():
                set_value(config, key, value, arg, known)
                given.add(key)
    check_config(config, groups)
    return config, given


def check_config(config, groups, where=''):
    """Each group's own checks (its __post_init__) on these values: a ConfigError naming the value."""
    for group in groups:
        values = {f.name: config[f.name] for f in fields(group) if f.name in config}
        unknown = group is GPTConfig  # the dataset's vocabulary is not known yet: the largest one a dataset can have
        if unknown:
            values['vocab_size'] = 65536
        try:
            group(**values)
        except ValueError as e:
            placeholder = unknown and 'vocabulary of 65536' in str(e)
            raise ConfigError(f"{where}{e}" + (" (65536, the most a dataset can have; the dataset's own is checked "
                                               "once it is read)" if placeholder else ''))


LABEL = re.compile(r"[\w.=+'-]+")  # a variant's label names its run's folder: a plain name


def split_label(variant):
    """'softmax:position=rope' -> ('softmax', 'position=rope'); without a label the variant names itself. The label
    names the run's folder, so it must be a plain name (one-line ConfigError otherwise)."""
    label, sep, settings = variant.partition(':')
    if not (sep and label and '=' not in label and '+' not in label):
        label, settings = variant, variant
    if ':' in settings:
        raise ConfigError(f"variant {variant!r}: one ':' at most, after a label (label:settings)")
    if label in ('.', '..') or not LABEL.fullmatch(label):
        raise ConfigError(f"variant {variant!r}: {label!r} cannot name a run's folder; a label (or a variant without "
                          f"one) is letters, digits and _ . = + ' - only, and not '.' or '..'")
    return label, settings


def parse_variant(variant, config, groups, forbidden=()):
    """
    A variant of a comparison or benchmark: an optional label and ':', then settings joined by '+',
    each key=value or a bare wavelet mode: 'none', 'haar', 'haar+wavelet_frac=0.25', 'head=fourier',
    'linear:attention=linear+position=rope'. Returns the overrides, checked on top of config.
    """
    return parse_settings(split_label(variant)[1], f"variant {variant!r}", config, groups, forbidden)


def parse_settings(settings, where, config, groups, forbidden=()):
    """A variant's settings ('haar+wavelet_frac=0.25') as overrides, checked on top of config."""
    known, overrides = declared(groups), {}
    parts = settings.split('+')
    if not all(parts):
        raise ConfigError(f"{where} has an empty setting (a '+' at an end or twice, or nothing after ':'); join "
                          f"settings with one '+', as in haar+wavelet_frac=0.25")
    for part in parts:
        key, eq, text = part.partition('=')
        if not eq:  # a bare word is a wavelet mode
            key, text = 'wavelet', part
        if key in forbidden:
            raise ConfigError(f"{where} sets {key}, which the comparison sets itself; remove it")
        set_value(overrides, key, parse_value(key, text, known[key][1].type if key in known else str), where, known)
    check_config(dict(config, **overrides), groups, where=f"{where}: ")
    return overrides


AUTO_PREPARE = {'pydocs': 'pydocs.py'}  # datasets that need no download: built on first use


def load_dataset(name, master=True):
    """data/<name>: its folder and meta.json, checked (the offline pydocs is built first if it is not there)."""
    data_dir = os.path.join('data', name)
    if name in AUTO_PREPARE and not os.path.exists(os.path.join(data_dir, 'meta.json')) and master:
        print(f"building the offline dataset {data_dir} (first run only)")
        r = subprocess.run(run_command(os.path.join('prepare', AUTO_PREPARE[name]), ['--out', data_dir]),
                           stderr=subprocess.PIPE, text=True)
        if r.returncode:  # its one-line error (--out refused, say) as ours
            last = (r.stderr.strip().splitlines() or [f"building {data_dir} failed"])[-1]
            raise UserError(last.removeprefix('error: '))
    meta = read_meta(data_dir)
    check_token_range(data_dir, meta)
    return data_dir, meta


def resolve_model(config, given, meta, bins):
    """
    The settings that depend on the dataset, resolved into config once and checked, before any work: the
    Fourier head's bins among the dataset's ordered bins `bins` (a range, or None: tokens that are not bins of
    one quantity; fourier_bins=0 takes them from fourier_start, if given, to the last), and the context
    against the splits. Returns the model's GPTConfig for the dataset's vocabulary.
    """
    c, data = config, f"data/{config['dataset']}"
    n_train, n_val = meta['tokens']['train'], meta['tokens']['val']
    if min(n_train, n_val) <= c['block_size'] + 1:
        raise ConfigError(f"block_size={c['block_size']} needs more than that many tokens per split of {data} "
                          f"(train {n_train}, val {n_val}); lower block_size or give more data")
    if c['head'] == 'fourier':
        if bins is None:
            raise ConfigError(f"head='fourier' needs tokens that are ordered bins of one quantity (audio levels); "
                              f"{data} holds {meta['tokenizer']} tokens: use head='linear'")
        if not c['fourier_bins']:
            start = c['fourier_start'] if 'fourier_start' in given else bins.start
            c['fourier_start'], c['fourier_bins'] = start, max(bins.stop - start, 0)
        if not (bins.start <= c['fourier_start'] and c['fourier_start'] + c['fourier_bins'] <= bins.stop):
            raise ConfigError(f"fourier_start={c['fourier_start']} and fourier_bins={c['fourier_bins']} leave the "
                              f"ordered bins {bins.start} .. {bins.stop - 1} of {data}; set them inside, or to 0")
    return model_config(c, meta['vocab_size'])


def out_of_memory(e):
    """Whether an exception is an allocation that failed (torch's words for it on each device)."""
    return isinstance(e, (torch.OutOfMemoryError, MemoryError)) or (isinstance(e, RuntimeError) and any(
        words in str(e) for words in ("can't allocate memory", 'out of memory', 'negative dimension', 'overflow')))


def build_model(gpt_config):
    """GPT(gpt_config) on the CPU, or a one-line error if its weights do not fit in memory."""
    try:
        return GPT(gpt_config)
    except (RuntimeError, MemoryError) as e:
        if not out_of_memory(e):
            raise
        raise ConfigError(f"not enough memory for this model's weights ({reason(e, 80)}); lower n_layer, n_embd, "
                          f"block_size or fourier_freqs")


def memory_bytes(device):
    """The memory of a device in bytes (a GPU's own, else the machine's), or None where it cannot be told."""
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None


def check_batch_memory(c, world, device):
    """A one-line error, before any work, for a batch that cannot fit in memory: what one batch's activations
    (each layer's float32 residual stream, at the least) or the evaluation's window offsets take alone."""
    activations = c['batch_size'] * c['block_size'] * c['n_embd'] * c['n_layer'] * 4
    need, have = max(activations, c['eval_iters'] * c['batch_size'] * world * 16), memory_bytes(device)
    if have is not None and need > have:
        raise ConfigError(f"batch_size={c['batch_size']}, eval_iters={c['eval_iters']} and block_size={c['block_size']} "
                          f"need {need / 2 ** 30:.3g} GiB at the least, and {device} has {have / 2 ** 30:.3g} GiB; "
                          f"lower batch_size (raise gradient_accumulation_steps) or eval_iters")


def model_config(config, vocab_size):
    """The GPTConfig of these settings and a dataset's vocabulary (checked again now that it is known)."""
    try:
        return GPTConfig(**{k: config[k] for k in MODEL_KEYS}, vocab_size=vocab_size)
    except ValueError as e:
        raise ConfigError(str(e))


def keep_checkpoint_model(config, given, saved, source):
    """A run that goes on from a checkpoint keeps its model: the model keys that a file or the
    command line set must equal the checkpoint's, the others are taken from it."""
    saved = asdict(GPTConfig(**saved))  # fills options added since the checkpoint with their defaults
    differ = [k for k in MODEL_KEYS if k in given and config[k] != saved[k]]
    if differ:
        raise ConfigError(f"{source} holds a model with " + ', '.join(f"{k}={saved[k]!r}" for k in differ) +
                          ", but the settings say " + ', '.join(f"{k}={config[k]!r}" for k in differ) +
                          "; drop those settings to go on with that model, or use a new out_dir")
    config.update({k: saved[k] for k in MODEL_KEYS})


def pmf_smoothness(pmfs):
    """The Fourier head paper's smoothness of PMFs (rows of an (n, m) array), averaged over rows:
    sum over sigma = 1..100 of 6 / (pi^2 sigma^2) * ||q - G_sigma q||_2, with G_sigma a Gaussian filter
    that wraps around (scipy's). Lower is smoother; None without scipy."""
    try:
        from scipy.ndimage import gaussian_filter1d
    except ImportError:
        return None
    q = np.asarray(pmfs, dtype=np.float64)
    total = np.zeros(q.shape[:-1])
    for sigma in range(1, 101):
        smoothed = gaussian_filter1d(q, sigma, axis=-1, mode='wrap', radius=q.shape[-1] - 1)
        total += 6 / (np.pi ** 2 * sigma ** 2) * np.linalg.norm(q - smoothed, axis=-1)
    return float(total.mean())


def start_from_checkpoint(config, given, saved):
    """A run that starts from another run's weights takes that model, except for the model keys that a
    file or the command line set (attention='linear' converts softmax attention)."""
    saved = asdict(GPTConfig(**saved))
    config.update({k: saved[k] for k in MODEL_KEYS if k not in given})


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


def load_pretrained(model, state, source):
    """Load another run's weights, which must fit (pretrained_problems). Returns the tensors a conversion added."""
    problems = pretrained_problems(model, state)
    if problems:
        raise ConfigError(f"{source} does not fit this model ({problems}); {CONVERSION_HINT}")
    state = {k.removeprefix('_orig_mod.'): v for k, v in state.items()}
    missing, _ = model.load_state_dict(state, strict=False)
    return sorted(missing)


# ----------------------------------------------------------------------------------------------
# device, dtype, autocast

def pick_device(name, local_rank=None):
    """'auto' -> cuda, mps or cpu; a named device is checked, with a one-line error if absent."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
    if name == 'cuda' and local_rank is not None:
        name = f'cuda:{local_rank}'
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if device.type == 'cuda' and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        have = f"{torch.cuda.device_count()} CUDA device(s)" if torch.cuda.is_available() else "no CUDA"
        raise ConfigError(f"device={name!r} but this machine has {have}; use device='auto' or 'cpu'")
    if device.type == 'mps' and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r} but this machine has no Apple GPU; use device='auto' or 'cpu'")
    if device.type not in ('cpu', 'cuda', 'mps'):
        raise ConfigError(f"device={name!r} is not supported here; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def pick_dtype(name, device):
    """'auto' -> bfloat16 (float16 on GPUs without it) on CUDA, float32 elsewhere."""
    if name == 'auto':
        if device.type == 'cuda':
            return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
        return 'float32'
    if name != 'float32' and device.type == 'cpu':
        raise ConfigError(f"dtype={name} is for GPUs; use dtype='float32' (or 'auto') on the CPU")
    return name


def autocast_context(device, dtype):
    """Mixed precision for GPU dtypes; float32 needs none."""
    return nullcontext() if dtype == 'float32' else torch.autocast(device.type, dtype=getattr(torch, dtype))


# ----------------------------------------------------------------------------------------------
# checkpoints

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


LOCK_FILE, CHECKPOINT = 'train.lock', 'ckpt.pt'


@contextmanager
def claim_out_dir(out_dir):
    """Hold out_dir for this run, which also proves it can be written: a second run on it stops with a
    one-line error naming this one. The lock is the operating system's, so it ends with the process,
    even on kill -9. A partial checkpoint (ckpt.pt.tmp) that a killed run left in out_dir is removed."""
    if os.path.isfile(os.path.join(out_dir, DATASET_META)):
        raise ConfigError(f"out_dir={out_dir!r} is a dataset's folder; give the run a folder of its own, e.g. out/<name>")
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
        f.truncate(0)
        f.write(f"the run with pid {os.getpid()} ({' '.join(sys.argv)[:120]})")
        f.flush()
        if not fcntl:
            f.close()  # no lock to hold: the file only says who runs here
    except OSError as e:
        raise ConfigError(f"cannot write in out_dir={out_dir!r} ({e.strerror}); use a folder you can write to")
    with suppress(FileNotFoundError):
        os.remove(os.path.join(out_dir, CHECKPOINT + '.tmp'))  # ours (save_checkpoint's); no other file is touched
    try:
        yield
    finally:
        with suppress(FileNotFoundError):  # out_dir may have been deleted meanwhile
            os.remove(path)  # before unlocking: the next run never locks a file that is no longer the lock
        f.close()
        for folder in made:  # a run that stopped before writing anything leaves no empty out_dir behind
            with suppress(OSError):
                os.rmdir(folder)


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
        raise ConfigError(f"no checkpoint at {path}; train one with train.py, or set out_dir to the run's folder")
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


def script_path(name):
    """The path of one of this project's scripts, to run it as a command (never to import it)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def run_command(name, args):
    """The argv that runs a script of this project with this Python."""
    return [sys.executable, script_path(name)] + list(args)

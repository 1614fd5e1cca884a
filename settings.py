"""
Settings: each is declared once, in a dataclass with its default, a comment that says what it does,
and its allowed values (the model's in model.GPTConfig, the machine's in system.SystemConfig,
training's here, each script's own in the script). A script reads them from config files (plain
assignments) and --key=value, checked by name, type and value before any work starts. Then the
settings that depend on the dataset or on a checkpoint are resolved once, into a new dict that
nothing changes afterwards (resolve_model: train.py, and compare.py, which checks every variant as
train.py will). Variants of a comparison or benchmark ('haar+wavelet_frac=0.25') are parsed here too.
"""
import ast
import difflib
import os
import re
import sys
import traceback
import types
from contextlib import suppress
from dataclasses import MISSING, asdict, dataclass, fields

from checks import at_least, within
from errors import ConfigError, SignalExit, a
from model import GPTConfig
from system import SystemConfig


@dataclass
class TrainConfig:
    # I/O
    out_dir: str = 'out'          # the run's folder: ckpt.pt, log.jsonl
    init_from: str = 'scratch'    # 'scratch' | 'resume' (from out_dir/ckpt.pt) | another run's ckpt.pt: start from
                                  # its weights (e.g. convert softmax to attention='linear'), a new optimiser
    overwrite: bool = False       # a new run (not resume) may replace the checkpoint and log already in out_dir
    resume_with_changes: bool = False  # resume with another seed, batch size, learning rate or schedule (RESUMED)
                                       # than the checkpoint's: the run then differs from one never stopped
    eval_interval: int = 250      # evaluate, log and checkpoint every this many iterations
    eval_iters: int = 20          # evaluation uses eval_iters * batch_size * world_size fixed windows per split
    eval_only: bool = False       # evaluate the checkpoint (with init_from='resume') or the init, then stop
    sample_tokens: int = 0        # print a sample of this many tokens at the end (text datasets)
    tensorboard: bool = False     # also log to out_dir/tensorboard (pip install tensorboard; tensorboard --logdir out)
    # data
    dataset: str = 'pydocs'       # data/<dataset>/; 'pydocs' (text) and 'tones' (synthetic piano) are built on first use
    batch_size: int = 32          # sequences per process per micro-step
    gradient_accumulation_steps: int = 1  # micro-steps per optimisation step
    overfit_single_batch: bool = False  # train on batch 0 forever: the quickest proof that the model learns
    # AdamW with linear warmup and cosine decay
    learning_rate: float = 1e-3   # the peak, reached after warmup_iters
    max_iters: int = 5000         # optimisation steps in all
    weight_decay: float = 0.1     # AdamW's, on matrices and embeddings only
    beta1: float = 0.9
    beta2: float = 0.95           # AdamW's betas
    grad_clip: float = 1.0        # 0: no clipping
    decay_lr: bool = True         # False: learning_rate throughout
    warmup_iters: int = 200       # linear warmup steps (keep it well below max_iters)
    lr_decay_iters: int = 0       # 0: max_iters
    min_lr: float = 1e-4          # the cosine decay's floor
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

# what a resumed run takes from its checkpoint when they are not given (given, they must be the same, or the exact
# resume is gone): the settings that decide the course of training, batch by batch and step by step
RESUMED = ('seed', 'batch_size', 'gradient_accumulation_steps', 'overfit_single_batch', 'learning_rate', 'weight_decay',
           'beta1', 'beta2', 'grad_clip', 'decay_lr', 'warmup_iters', 'lr_decay_iters', 'min_lr')

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
        raise ConfigError(f"{key}={value!r} in {where} should be {a(want.__name__)} (default {known[key][1].default!r})")
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
    except SignalExit:  # Ctrl-C or SIGTERM while the file ran: not the file's fault
        raise
    except (Exception, SystemExit) as e:  # NameError and friends: the line in the file that raised it
        line = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == path]
        raise ConfigError(f"{path}{f', line {line[-1]}' if line else ''}: {type(e).__name__}: {e}; "
                          f"a config file is plain assignments like wavelet = 'haar'")
    # what a file imports or defines to compute its values (import math, def helper) is no setting: no setting is callable
    return {k: v for k, v in scope.items() if not k.startswith('_') and not isinstance(v, types.ModuleType)
            and not callable(v)}


def parse_config(argv, groups, doc='', from_checkpoint=()):
    """
    Settings from the defaults of the dataclasses `groups`, then config files (plain assignments),
    then --key=value (or --key value), checked by name, type and allowed values. Returns (config,
    given): the settings as one dict, and the set of keys that a file or the command line set.
    from_checkpoint: groups whose values a script takes from a checkpoint (--help says so).
    """
    known = declared(groups)
    if any(a in ('-h', '--help') for a in argv):
        print_help(doc, groups, from_checkpoint)
        raise SystemExit(0)
    config, given, args = defaults(groups), set(), list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith('--'):
            key, eq, text = arg[2:].partition('=')
            if not eq and args and not args[0].startswith('--'):
                eq, text = '=', args.pop(0)  # --key value, as the prepare scripts take it
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


def print_help(doc, groups, from_checkpoint=()):
    """The script's docstring, then every setting with its default and the comment beside it in its dataclass."""
    print((doc.strip() + '\n\n' if doc else '') + 'Settings (--key=value; a config file sets the same names):')
    for group in groups:
        comments, checkpoint = field_comments(group), group in from_checkpoint
        print(f"\n{group.__name__} ({source_file(group)})" +
              (": the checkpoint's, give one only to check it" if checkpoint else ""))
        for f in fields(group):
            if group is GPTConfig and f.name in NOT_SETTINGS:
                continue
            setting = f"  {f.name}" + ('' if checkpoint else f" = {f.default!r}")
            print(f"{setting:<34} {comments.get(f.name, '')}".rstrip())


def source_file(group):
    """The file a settings dataclass is declared in, by its name ('sample.py', never '__main__.py')."""
    file = getattr(sys.modules.get(group.__module__), '__file__', None)
    return os.path.basename(file) if file else f"{group.__module__}.py"


def field_comments(group):
    """{field: the comment beside it, and on the comment lines aligned below it} in a dataclass's source."""
    import inspect
    try:
        lines = inspect.getsource(group).splitlines()
    except (OSError, TypeError):
        return {}
    out, last, column = {}, None, None
    for line in lines:
        field_line = re.match(r"\s+(\w+): [\w.]+ = [^#]*(#\s*(.*))?$", line)
        if field_line:
            last, column = field_line.group(1), line.find('#') if field_line.group(2) else None
            out[last] = field_line.group(3) or ''
        elif last and column and line.find('#') == column and not line[:column].strip():
            out[last] += ' ' + line[column + 1:].strip()  # the comment goes on below, aligned
        else:
            last = None
    return out


def check_config(config, groups, where=''):
    """Each group's own checks (its __post_init__) on these values: a ConfigError naming the value."""
    for group in groups:
        values = {f.name: config[f.name] for f in fields(group) if f.name in config}
        try:
            group(**values)  # a GPTConfig without the dataset's vocabulary: what needs it is checked later
        except ValueError as e:
            raise ConfigError(f"{where}{e}")


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


def model_config(config, vocab_size):
    """The GPTConfig of these settings and a dataset's vocabulary (checked again now that it is known)."""
    try:
        return GPTConfig(**{k: config[k] for k in MODEL_KEYS}, vocab_size=vocab_size)
    except ValueError as e:
        raise ConfigError(str(e))


def model_settings(config, given, saved=None, keep=False, source='the checkpoint'):
    """
    The model keys of a run, {key: value}: the settings' own; or, from a checkpoint's model_args `saved`,
    with keep=True (resume, sampling) that model, which the keys a file or the command line set (`given`)
    must not contradict; with keep=False (init_from: another run's weights) that model but for the keys
    given (attention='linear' converts softmax attention).
    """
    if saved is None:
        return {k: config[k] for k in MODEL_KEYS}
    saved = asdict(GPTConfig(**saved))  # fills options added since the checkpoint with their defaults
    if not keep:
        return {k: config[k] if k in given else saved[k] for k in MODEL_KEYS}
    differ = [k for k in MODEL_KEYS if k in given and config[k] != saved[k]]
    if differ:
        raise ConfigError(f"{source} holds a model with " + ', '.join(f"{k}={saved[k]!r}" for k in differ) +
                          ", but the settings say " + ', '.join(f"{k}={config[k]!r}" for k in differ) +
                          "; drop those settings to go on with that model, or use a new out_dir")
    return {k: saved[k] for k in MODEL_KEYS}


def resumed_settings(config, given, saved, source, world=1, saved_world=None):
    """The settings of a resumed run: the RESUMED ones of the checkpoint's config `saved` where none was given; one given
    with another value is a one-line error, unless resume_with_changes=True says to go on with it. The batch is the
    global one, batch_size x gradient_accumulation_steps x processes: on `world` processes, a checkpoint written by
    `saved_world` goes on as it began with the batch_size that keeps it, and not with its own batch_size, which would
    change it (a checkpoint that does not say its process count: batch_size itself)."""
    saved = saved if isinstance(saved, dict) else {}
    batch = ('batch_size', 'gradient_accumulation_steps')
    moved = saved_world is not None and saved_world != world  # to another number of processes: the global batch
    changed = [k for k in RESUMED if k in given and k in saved and config[k] != saved[k] and not (moved and k in batch)]
    was, now = [f"{k}={saved[k]!r}" for k in changed], [f"{k}={config[k]!r}" for k in changed]
    resumed = dict(config, **{k: saved[k] for k in RESUMED if k in saved and k not in given})
    if moved and all(k in saved for k in batch):
        sequences = [saved['batch_size'] * saved['gradient_accumulation_steps'] * saved_world,
                     resumed['batch_size'] * resumed['gradient_accumulation_steps'] * world]
        if sequences[0] != sequences[1]:
            was.append(f"a global batch of {sequences[0]} sequences ({saved['batch_size']} x "
                       f"{saved['gradient_accumulation_steps']} x {saved_world} process{'es' * (saved_world > 1)})")
            now.append(f"{sequences[1]} ({resumed['batch_size']} x {resumed['gradient_accumulation_steps']} x "
                       f"{world} process{'es' * (world > 1)})")
            keep = sequences[0] / (resumed['gradient_accumulation_steps'] * world)
            if keep == int(keep) and keep >= 1:
                now[-1] += f" (--batch_size={int(keep)} keeps it)"
    if was and not config['resume_with_changes']:
        raise ConfigError(f"{source} was trained with " + ', '.join(was) + ", but the settings say " + ', '.join(now) +
                          ": resumed so, it would not go on as it began; drop those settings to resume exactly, or "
                          "add --resume_with_changes=True to go on with them")
    check_config(resumed, TRAIN, where=f"{source}: ")
    return resumed


def contradicted(config, given, saved, conversion=('attention', 'qk_norm')):
    """The model keys a file or the command line set to other values than a checkpoint's model_args `saved`
    has, as 'n_layer=4 (the source has 2), ...' (a conversion's own keys left out); '' if none."""
    saved = asdict(GPTConfig(**saved))
    return ', '.join(f"{k}={config[k]!r} (the source has {saved[k]!r})" for k in MODEL_KEYS
                     if k in given and k not in conversion and config[k] != saved[k])


def resolve_model(config, given, dataset, saved=None, keep=False, source='the checkpoint'):
    """
    A run's settings resolved once, before any work: the model keys (model_settings), and what depends on
    the dataset (its vocabulary, what an option takes from its data such as the Fourier head's bins, the
    context against the splits), checked. Returns them as a new dict, and the model's GPTConfig; nothing
    changes either afterwards.
    """
    try:
        gpt = GPTConfig(**model_settings(config, given, saved, keep, source)).for_data(dataset.vocab_size,
                                                                                      dataset.ordered)
    except ValueError as e:
        raise ConfigError(f"{e} (data/{dataset.name} holds {dataset.meta['tokenizer']} tokens)")
    n_train, n_val = dataset.size('train'), dataset.size('val')
    if min(n_train, n_val) <= gpt.block_size + 1:
        raise ConfigError(f"block_size={gpt.block_size} needs more than that many tokens per split of "
                          f"data/{dataset.name} (train {n_train}, val {n_val}); lower block_size or give more data")
    return dict(config, **{k: getattr(gpt, k) for k in MODEL_KEYS}), gpt

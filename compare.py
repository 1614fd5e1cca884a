r"""
Does an option reach the baseline's loss in fewer steps? Train variants side by side (same
settings, seeds, data order and evaluation windows; only the variant's settings differ), then
write a markdown table and a plot. Each run is `python train.py ...` in a process of its own, so
any run can be repeated alone with the command in its log.

    python compare.py config/compare_quick.py                 # minutes on 2 CPU cores (results/quick/run.txt)
    python compare.py config/text8_baseline.py --variants=none,haar,learnable --seeds=1,2,3 \
        --results=results/text8 --max_iters=10000
    python compare.py --replot=True --results=results/quick   # table and plot again from the logs
                                     # (--variants sets their order; the first is the baseline)

A variant is a set of settings joined by '+', each key=value or a bare wavelet mode: `none`,
`haar`, `haar+wavelet_frac=0.25`, `haar+wavelet_window=32` (single window), `ema`,
`wavelet=haar+learning_rate=3e-3`, optionally named by a label and ':'
(`linear:attention=linear+position=rope`). `init_from=<label>` starts each seed from that earlier
variant's final checkpoint of the same seed (e.g. to convert it to linear attention). Every variant
and seed is checked before the first run. The first variant is the baseline. Runs whose log is
already complete are not trained again, so an interrupted comparison picks up where it stopped; a
table of runs that are missing or stopped says so above it, and the plot in its title.

    python compare.py --runs=out/quickstart_none,out/quickstart --results=out/cmp   # runs of your own
                                     # (the first is the baseline: put the run without the option first)

compare.py replaces summary.md, summary.json and curves.png in --results only when it wrote them
(its table, its fields, its mark in the PNG); a file of yours of those names is refused, untouched.

Steps-to-match: the first evaluated step at which a variant's validation loss (mean over seeds)
is at or below the baseline's final validation loss (mean over seeds), divided by the baseline's
number of steps. The paper claims about 0.4-0.6 for haar. Time-to-match: the training time (the
runs' own step times, evaluation excluded) the variant took to that step, divided by the
baseline's whole training time: what a user waits, as a fraction.
"""
import ctypes
import glob
import json
import math
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
import torch

from checkpoints import CHECKPOINT, CONVERSION_HINT, LOCK_FILE, pretrained_problems, run_names
from dataset import Dataset, tokens_differ
from errors import ConfigError, Interrupted, UserError, main_guard, reason
from model import GPT, GPTConfig
from outputs import check_file, dataset_around, write_atomically
from checks import at_least
from settings import TRAIN, check_config, contradicted, defaults, parse_config, parse_settings, resolve_model, split_label
from system import default_threads, run_command


@dataclass
class CompareConfig:
    variants: str = 'none,haar,learnable'  # comma-separated; the first is the baseline
    seeds: str = '1,2,3'                   # comma-separated integers: one run per variant and seed
    results: str = 'results/compare'       # runs/<variant>/seed<n>/, summary.md, summary.json, curves.png
    replot: bool = False                   # only rebuild the table and plot from the logs
    jobs: int = 1                          # runs at a time (README, "Speed", says how to pick it on a GPU)
    runs: str = ''                         # instead: out_dirs of runs of your own, 'out/a,out/b' (the first is the
                                           # baseline): their table and curves, written into --results

    def __post_init__(self):
        at_least(self, 1, 'jobs')
        names = self.variants.split(',')
        if not all(names) or len(set(names)) != len(names):
            raise ValueError(f"variants={self.variants!r}: give distinct variants separated by commas")
        try:
            seeds = [int(s) for s in self.seeds.split(',')]
        except ValueError:
            raise ValueError(f"seeds={self.seeds!r}: give integers separated by commas, e.g. 1,2,3")
        if len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError(f"seeds={self.seeds!r}: give distinct whole numbers from 0 up, e.g. 1,2,3")
        if not self.results:
            raise ValueError("results must not be empty")


COMPARE = (CompareConfig,) + TRAIN
SET_PER_RUN = ('seed', 'out_dir', 'init_from')  # the comparison sets these itself


def run_dir(results, variant, seed):
    return os.path.join(results, 'runs', variant, f'seed{seed}')


def damaged_fix(path):
    """What to do about a damaged log: a run with a checkpoint can go on once the log is mended."""
    folder = os.path.dirname(path)
    if os.path.exists(os.path.join(folder, CHECKPOINT)):
        return (f"delete or mend that line (the run's {CHECKPOINT} is kept: it goes on from there), "
                f"or delete {folder} to train that run again")
    return f"delete {folder} to train that run again"


def read_log(path):
    """(header, eval records) of one run's log.jsonl; a one-line error for a log that is damaged. A torn last
    line (a write cut short, as a full disk or a crash leaves: no line end, not JSON) of a run that has a
    checkpoint is left out with a warning; cut_torn_line removes it before the run goes on."""
    try:
        with open(path, 'rb') as f:
            rows = f.read().split(b'\n')
    except OSError as e:
        raise UserError(f"{path} cannot be read ({reason(e, 80)}); {damaged_fix(path)}")
    tail, lines = rows.pop(), []  # tail: what follows the last line end, b'' unless a write was cut short
    for n, row in enumerate(rows + [tail] if tail else rows, 1):
        try:
            lines.append(json.loads(row))
        except ValueError as e:  # UnicodeDecodeError is one
            if n > len(rows) and os.path.exists(os.path.join(os.path.dirname(path), CHECKPOINT)):
                print(f"warning: {path} ends in a torn line {n} (a write cut short): left out", file=sys.stderr)
                break  # the run goes on from its checkpoint (cut_torn_line); without one it trains again
            raise UserError(f"{path} is damaged at line {n} ({reason(e, 60)}); {damaged_fix(path)}")
    if not lines or not isinstance(lines[0], dict) or not isinstance(lines[0].get('config'), dict):
        raise UserError(f"{path} does not start with a run header; delete {os.path.dirname(path)} to train that run "
                        f"again")
    records = [r for r in lines[1:] if isinstance(r, dict) and 'iter' in r]
    if not all(type(r['iter']) is int and isinstance(r.get('val_loss'), (int, float)) for r in records):
        raise UserError(f"{path} holds an evaluation without iter or val_loss; {damaged_fix(path)}")
    if not all(math.isfinite(r['val_loss']) for r in records):  # train.py stops at a loss that is not finite
        raise UserError(f"{path} is damaged (a val_loss that is not a finite number); {damaged_fix(path)}")
    return lines[0], records


def cut_torn_line(path):
    """Remove a torn last line (read_log's) from a log whose run goes on from its checkpoint: train.py appends
    to the log, and the torn line would otherwise end up inside it. Whole lines are never touched."""
    with open(path, 'rb+') as f:
        data = f.read()
        if data and not data.endswith(b'\n'):
            try:
                json.loads(data[data.rfind(b'\n') + 1:])
            except ValueError:
                f.truncate(data.rfind(b'\n') + 1)
                print(f"{path}: its torn last line cut off; the run goes on from its checkpoint", flush=True)


def complete(path, max_iters):
    """Whether the run of this log reached max_iters (an empty log: a run killed as it started, not complete)."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False
    return any(r['iter'] >= max_iters for r in read_log(path)[1])


def plan(c):
    """{label: (overrides, label of the variant it starts from or None)} of --variants, every variant checked as
    its run will be (check_run), before the first run trains."""
    out, checked, datasets = {}, {}, {}
    base = defaults(TRAIN)
    shared = {k for k in base if k not in SET_PER_RUN and c[k] != base[k]}  # on every run's command line
    for seed in c['seeds'].split(','):  # as train.py checks its seed, but for every run before the first
        check_config(dict(c, seed=int(seed)), TRAIN, where=f"seeds={c['seeds']}: ")
    for variant in c['variants'].split(','):
        label, settings = split_label(variant)
        parts = settings.split('+')
        source = next((p.partition('=')[2] for p in parts if p.startswith('init_from=')), None)
        if source is not None and source not in out:
            raise ConfigError(f"variant {variant!r}: init_from={source} is not the label of an earlier variant; "
                              f"name one listed before it, as in softmax:position=rope,linear:attention=linear+init_from=softmax")
        settings = '+'.join(p for p in parts if not p.startswith('init_from='))
        if label in out:
            raise ConfigError(f"two variants are called {label!r}; give each its own label")
        overrides = parse_settings(settings, f"variant {variant!r}", c, TRAIN, SET_PER_RUN) \
            if settings or source is None else {}  # a variant may only start from another
        out[label] = (overrides, source)
        checked[label] = check_run(dict(c, **overrides), shared | set(overrides), checked.get(source), source,
                                   f"variant {variant!r}: ", datasets)
        first, this = next(iter(out.values()))[0].get('dataset', c['dataset']), overrides.get('dataset', c['dataset'])
        if this != first:
            raise ConfigError(f"variant {variant!r} trains on data/{this}, the baseline on data/{first}: losses per "
                              f"token of two datasets are not comparable; compare variants of one dataset")
    return out


def check_run(run, given, source, source_label, where, datasets):
    """What train.py checks as a run starts, checked now for one variant: its dataset is there, the settings that
    depend on it fit it (head='fourier' needs ordered bins, the context the splits), and a variant that starts
    from another fits that one's weights and tokens. Returns (model_args, dataset) for variants that start from
    this one. source: the (model_args, dataset) of the variant it starts from, or None. datasets: {name: Dataset}."""
    try:
        if run['dataset'] not in datasets:
            datasets[run['dataset']] = Dataset(run['dataset'])
        data = datasets[run['dataset']]
        if source:  # as train.py's init_from: the source's model, but for the settings given here
            other = tokens_differ(source[1].meta, data.meta)  # the vocabulary size among the facts compared
            if other:
                raise ConfigError(f"it starts from {source_label}, trained on other tokens than data/{run['dataset']} "
                                  f"holds ({other}); start from a variant of this dataset")
        _, config = resolve_model(run, given, data, source and source[0], keep=False, source=source_label)
        if source:
            with torch.device('meta'):  # shapes only: nothing is allocated
                problems = pretrained_problems(GPT(config), GPT(GPTConfig(**source[0])).state_dict())
            differ = contradicted(run, given, source[0])
            if problems:
                raise ConfigError(f"the weights of {source_label} do not fit it (" +
                                  (f"it sets {differ}; drop those settings" if differ else f"{problems}; {CONVERSION_HINT}") + ")")
    except UserError as e:
        raise ConfigError(f"{where}{e}")
    return asdict(config), data


SUMMARY_FILES = ('summary.md', 'summary.json', 'curves.png')
SUMMARY_FIELDS = {'seeds', 'params', 'steps', 'final', 'final_std', 'match_step', 'match_ratio', 'step_ms'}
PNG_MARK = 'compare.py (WaveletGPT)'  # the Software text of every curves.png we write


def written_here(path):
    """Whether the summary file at path is one that compare.py wrote: summary.json of its fields for every
    variant, summary.md with its table, curves.png with our mark (or, from before the mark, matplotlib's beside
    a summary.json of ours). Only such a file is replaced."""
    name = os.path.basename(path)
    try:
        with open(path, 'rb') as f:
            head = f.read() if name == 'summary.json' else f.read(1 << 16)
    except OSError:
        return False
    if name == 'summary.json':
        try:
            summary = json.loads(head)
        except ValueError:
            return False
        return isinstance(summary, dict) and bool(summary) and \
            all(isinstance(v, dict) and SUMMARY_FIELDS <= set(v) for v in summary.values())
    if name == 'summary.md':
        return b'\nBaseline `' in head and b'\n| variant | params | seeds | steps |' in head
    return head.startswith(b'\x89PNG') and (b'tEXtSoftware\x00' + PNG_MARK.encode() in head or (
        b'tEXtSoftware\x00Matplotlib' in head and written_here(os.path.join(os.path.dirname(path), 'summary.json'))))


def check_outputs(results, replot, own_runs=False):
    """results is a new folder in a place that can be written, or a comparison's (it holds runs/; with own_runs:
    only the summary files) whose summary files are compare.py's own: checked before any work. Nothing is
    made here: a comparison that fails its checks leaves no folder behind."""
    if os.path.exists(results) and not os.path.isdir(results):
        raise ConfigError(f"results={results!r} is a file; give a folder")
    if not os.path.isdir(results):
        up = os.path.dirname(os.path.abspath(results))
        while not os.path.exists(up):
            up = os.path.dirname(up)
        if not os.path.isdir(up):
            raise ConfigError(f"results={results!r}: {up} is a file, not a folder; give another --results")
        if not os.access(up, os.W_OK | os.X_OK):
            raise ConfigError(f"results={results!r}: the folder {up} is not writable; give another --results")
        return
    other = set(os.listdir(results)) - set(SUMMARY_FILES) - ({'runs', 'jobs.json', 'plan.json'} if not own_runs else set())
    if other and (own_runs or not replot) and not os.path.isdir(os.path.join(results, 'runs')):
        raise ConfigError(f"results={results!r} holds files of its own ({sorted(other)[0]}, ...) and no runs/ of a "
                          f"comparison; give a new folder")
    if own_runs and other:
        raise ConfigError(f"results={results!r} holds more than a summary ({sorted(other)[0]}, ...); give a new folder")
    for name in SUMMARY_FILES:
        path = os.path.join(results, name)
        check_file(path, overwrite=True, setting='--results')
        if os.path.lexists(path) and not written_here(path):
            raise ConfigError(f"{path} is not one that compare.py wrote, and it would be replaced; move it away, "
                              f"or give another --results")


def run_all(c):
    """Every run that is not complete yet, seed by seed, up to c['jobs'] at a time: each is train.py in a
    process of its own (a run that starts from another waits for that one). Ctrl-C, SIGTERM or a closed terminal
    stops them all, each saving first; a run that fails stops the others, and is named with its message."""
    variants, seeds = plan(c), [int(s) for s in c['seeds'].split(',')]
    todo = []
    for seed in seeds:  # seed-major: a partial comparison already holds every variant
        for variant, (overrides, source) in variants.items():
            if complete(os.path.join(run_dir(c['results'], variant, seed), 'log.jsonl'),
                        overrides.get('max_iters', c['max_iters'])):
                print(f"{variant} seed {seed}: done already")
            else:
                todo.append((variant, seed))
    record_plan(c, variants, seeds)
    running, finished, total = {}, 0, len(todo)  # running: {(variant, seed): (process, its output file or None)}
    with forwarded_signals(running) as stop:
        while (todo or running) and not stop['signal']:
            for variant, seed in [job for job in todo if ready(c, variants, *job)]:
                if len(running) < c['jobs']:
                    todo.remove((variant, seed))
                    print(f"=== {variant}, seed {seed} (run {finished + len(running) + 1} of {total}) ===", flush=True)
                    running[variant, seed] = start_run(c, variants[variant], variant, seed, slot=free_slot(running, c))
            assert running, "no run can start: each waits for another"  # sources come first: never
            (variant, seed), code = wait_for_one(running)
            finished += 1
            if code == 0:
                record_jobs(c['results'], variant, seed, c['jobs'])
                print(f"run {finished} of {total} done: {variant} seed {seed}", flush=True)
            elif code == 130 or stop['signal']:
                stop_all(running, stop, signal.SIGINT)
            else:
                stop_all(running, stop, signal.SIGTERM)
                out = running_log(c, variant, seed)
                said = last_line(out) if out else None
                raise UserError(f"the run {variant} seed {seed} failed (exit code {code})" + (f": {said!r}" if said else "") +
                                (f"; its output: {out}" if out else "; its message is above") +
                                ("; the other runs stopped, each saved" if c['jobs'] > 1 else "") +
                                "; once the cause is fixed, the same command goes on")
    if stop['signal']:
        raise Interrupted(f"{stop['signal']}: every run in progress saved; run the same command again to go on")


def record_plan(c, variants, seeds):
    """results/plan.json: the variants and seeds this comparison trains, so that a table drawn while some runs
    are missing can say which (the results folder is made here, after every check)."""
    try:
        os.makedirs(c['results'], exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make results={c['results']!r} ({reason(e, 80)}); give another --results")
    write_text(os.path.join(c['results'], 'plan.json'), json.dumps(dict(
        variants=list(variants), seeds=seeds,
        max_iters={v: o.get('max_iters', c['max_iters']) for v, (o, _) in variants.items()}), indent=1))


def ready(c, variants, variant, seed):
    """A run that starts from another variant's checkpoint starts once that run is complete."""
    overrides, source = variants[variant]
    return source is None or complete(os.path.join(run_dir(c['results'], source, seed), 'log.jsonl'),
                                      variants[source][0].get('max_iters', c['max_iters']))


try:  # Linux: a process can ask for a signal when its parent ends
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None
PR_SET_PDEATHSIG = 1

# Elsewhere a watcher process does it: when compare.py (its parent) is gone, SIGTERM to the run's process group.
WATCHER = ("import os, signal, sys, time\n"
           "parent, run = int(sys.argv[1]), int(sys.argv[2])\n"
           "while os.getppid() == parent:\n"
           "    time.sleep(0.5)\n"
           "    try: os.kill(run, 0)\n"
           "    except OSError: sys.exit()\n"
           "try: os.killpg(run, signal.SIGTERM)\n"
           "except OSError: pass\n")


def start_child(argv, **kw):
    """A process of argv in a process group of its own (a signal reaches it once, through us) that ends with
    this process however this one ends (kill -9, a closed terminal): it then gets SIGTERM (train.py saves and
    stops). On Linux by PR_SET_PDEATHSIG; elsewhere by a watcher process beside it."""
    parent = os.getpid()

    def die_with_parent():  # in the child, before exec
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)
    p = subprocess.Popen(argv, process_group=0, preexec_fn=die_with_parent if _prctl else None, **kw)
    p.watcher = None if _prctl else subprocess.Popen([sys.executable, '-c', WATCHER, str(parent), str(p.pid)],
                                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return p


def start_run(c, variant_plan, variant, seed, slot):
    """python train.py for one run (start_child). With jobs > 1 its output goes to train.out beside its log.jsonl,
    the output of the attempt before kept as train.previous.out, its threads are a share of the cores (unless
    threads was set) and, with several GPUs, it gets one of them."""
    overrides, source = variant_plan
    out = run_dir(c['results'], variant, seed)
    log_path = os.path.join(out, 'log.jsonl')
    if os.path.exists(os.path.join(out, CHECKPOINT)):  # an interrupted run goes on
        init = 'resume'
        if os.path.exists(log_path):
            cut_torn_line(log_path)
    else:
        init = os.path.join(run_dir(c['results'], source, seed), CHECKPOINT) if source else 'scratch'
    base = defaults(TRAIN)
    args = [f'--{k}={v}' for k, v in c.items() if k in base and k not in SET_PER_RUN and v != base[k]] + \
        [f'--{k}={v}' for k, v in overrides.items()] + [f'--seed={seed}', f'--out_dir={out}', f"--init_from={init}"]
    if init != 'resume' and os.path.exists(log_path) and 'overwrite' in base:
        args.append('--overwrite=True')  # this comparison's own run, stopped before its first checkpoint
    if init == 'resume' and checkpoint_iter(out) >= overrides.get('max_iters', c['max_iters']):
        args.append('--eval_only=True')  # trained to the end, but the log lost its last evaluation: that one again
    env, output = dict(os.environ), None
    if c['jobs'] > 1:
        if not c['threads']:
            args.append(f"--threads={max(1, default_threads() // c['jobs'])}")  # the idle cores shared out
        gpus = torch.cuda.device_count() if c['device'] in ('auto', 'cuda') else 0
        if gpus > 1:
            env['CUDA_VISIBLE_DEVICES'] = str(slot % gpus)
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, 'train.out')
        if os.path.exists(path):  # each attempt's message on its own: a rerun's failure is not buried
            os.replace(path, os.path.join(out, 'train.previous.out'))
        output = open(path, 'w')
    p = start_child(run_command('train.py', args), env=env, stdout=output,
                    stderr=subprocess.STDOUT if output else None)
    p.slot = slot
    return p, output


def checkpoint_iter(folder):
    """The step of the checkpoint in folder (read in place, not loaded); -1 if it cannot be read."""
    try:
        return torch.load(os.path.join(folder, CHECKPOINT), map_location='cpu', mmap=True, weights_only=True)['iter_num']
    except Exception:  # train.py says what is wrong with it when it resumes
        return -1


def free_slot(running, c):
    """The lowest slot (a GPU, with several) that no running job holds."""
    taken = {p.slot for p, _ in running.values()}
    return next(i for i in range(c['jobs']) if i not in taken)


def running_log(c, variant, seed):
    path = os.path.join(run_dir(c['results'], variant, seed), 'train.out')
    return path if c['jobs'] > 1 and os.path.exists(path) else None


def last_line(path):
    """The last line of a run's output that says something (its error, as a rule), or None."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = [line.strip() for line in f.read()[-4000:].splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][:200] if lines else None


def wait_for_one(running):
    """Wait until one running process ends; remove it; ((variant, seed), exit code)."""
    while True:
        for job, (p, output) in list(running.items()):
            code = p.poll()
            if code is not None:
                del running[job]
                if output:
                    output.close()
                if p.watcher:
                    p.watcher.kill()
                    p.watcher.wait()
                return job, code
        time.sleep(0.2)


@contextmanager
def forwarded_signals(running):
    """Ctrl-C or SIGTERM reaches every running train.py (each saves, then exits 130); we wait for them. A closed
    terminal (SIGHUP) reaches them as SIGTERM: train.py saves on that one."""
    stop = {'signal': None}

    def forward(signum, frame):
        stop['signal'] = signal.Signals(signum).name
        for p, _ in running.values():
            p.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)
    hangup = (signal.SIGHUP,) if hasattr(signal, 'SIGHUP') else ()
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM) + hangup}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stop_all(running, stop, signum):
    """Stop every running run (it saves first) and wait for each."""
    stop['signal'] = stop['signal'] or signal.Signals(signum).name
    for p, _ in running.values():
        p.send_signal(signum)
    while running:
        wait_for_one(running)


def record_jobs(results, variant, seed, jobs):
    """results/jobs.json: how many runs shared the machine while each ran (the time columns say so)."""
    path = os.path.join(results, 'jobs.json')
    try:
        with open(path) as f:
            shared = json.load(f)
    except (OSError, ValueError):
        shared = {}
    shared[f"{variant}/seed{seed}"] = jobs
    write_text(path, json.dumps(shared, indent=1))


def shared_runs(results):
    """The most runs that shared the machine in this comparison (1 if none did, or before jobs.json)."""
    try:
        with open(os.path.join(results, 'jobs.json')) as f:
            return max(json.load(f).values(), default=1)
    except (OSError, ValueError, TypeError):
        return 1


def load_runs(results, dirs=()):
    """{variant: {seed: run}} from results/runs/<variant>/seed<n>/log.jsonl, or from the run folders `dirs`
    (each a variant of one seed, named by the shortest tail of its path that tells them apart), plus the
    first header. A run: its eval records, params, config, where it started from (a conversion), and
    `stopped`: None for a run that reached its max_iters, else what it is (stopped, or still training)."""
    if dirs:
        seen = {}
        for d in dirs:
            if not os.path.isfile(os.path.join(d, 'log.jsonl')):
                raise ConfigError(f"runs: {d} holds no log.jsonl; give out_dirs that train.py wrote")
            if os.path.realpath(d) in seen:
                raise ConfigError(f"runs: {seen[os.path.realpath(d)]} and {d} are the same run; give each run once")
            seen[os.path.realpath(d)] = d
        names = run_names(dirs)
        found = [(os.path.join(d, 'log.jsonl'), names[d], None) for d in dirs]
    else:
        found = [(path, os.path.basename(os.path.dirname(os.path.dirname(path))),
                  int(os.path.basename(os.path.dirname(path))[4:]))
                 for path in sorted(glob.glob(os.path.join(results, 'runs', '*', 'seed*', 'log.jsonl')))]
    runs, header, first = {}, None, None
    for path, variant, seed in found:
        h, records = read_log(path)
        vocab = vocab_size(path)
        first = first or (path, h['config'].get('dataset'), vocab)
        if h['config'].get('dataset') != first[1] or (vocab and first[2] and vocab != first[2]):
            raise ConfigError(f"{os.path.dirname(path)} was trained on data/{h['config'].get('dataset')} (vocabulary "
                              f"{vocab or '?'}), {os.path.dirname(first[0])} on data/{first[1]} (vocabulary "
                              f"{first[2] or '?'}): losses per token of two datasets are not comparable; compare runs of "
                              f"one dataset")
        if not records:  # stopped before its first evaluation: nothing to show yet
            print(f"warning: {path} has no evaluation yet; left out", file=sys.stderr)
            continue
        header = header or h
        seed = h['config'].get('seed') if seed is None else seed
        runs.setdefault(variant, {})[seed] = dict(records=records, params=h.get('params'), config=h['config'],
                                                  started_from=h.get('started_from'),
                                                  stopped=stopped(os.path.dirname(path), records, h['config']))
    if not runs:
        raise ConfigError(f"no run logs under {results}/runs; run the comparison first")
    return runs, header


def vocab_size(log):
    """The vocabulary of the run whose log this is, from its checkpoint (read in place, not loaded), or None."""
    try:
        ckpt = torch.load(os.path.join(os.path.dirname(log), CHECKPOINT), map_location='cpu', mmap=True, weights_only=True)
        return ckpt['model_args']['vocab_size']
    except Exception:  # no checkpoint, or none that says: the dataset's name is compared all the same
        return None


def stopped(folder, records, config):
    """None for a run that reached its max_iters; else 'stopped at step i of n', or 'still training (step i of
    n so far)' while a live train.py holds its folder (its lock file names the process)."""
    last, goal = records[-1]['iter'], config.get('max_iters')
    if not isinstance(goal, int) or last >= goal:
        return None
    try:
        with open(os.path.join(folder, LOCK_FILE)) as f:
            pid = int(f.read().split('pid ')[1].split()[0])
        os.kill(pid, 0)
        return f"still training (step {last} of {goal} so far)"
    except (OSError, IndexError, ValueError):
        return f"stopped at step {last} of {goal}"


def mean_curve(seed_runs):
    """Eval steps common to all seeds, and the val loss at each: (steps, array seeds x steps)."""
    per_seed = [{r['iter']: r['val_loss'] for r in s['records']} for s in seed_runs.values()]
    steps = sorted(set.intersection(*(set(p) for p in per_seed)))
    return steps, np.array([[p[t] for t in steps] for p in per_seed])


def train_seconds(records):
    """Cumulative time spent in training steps (evaluation excluded) at each eval."""
    total, last, out = 0.0, 0, []
    for r in records:
        if r.get('step_ms'):
            total += r['step_ms'] / 1000 * (r['iter'] - last)
        last = r['iter']
        out.append(total)
    return out


def mean_step_ms(seed_runs):
    """Mean training-step time over the evals of each seed, then over seeds."""
    return float(np.mean([np.mean([r['step_ms'] for r in s['records'] if r.get('step_ms')]) for s in seed_runs.values()]))


def seconds_at(seed_runs, step):
    """Training seconds to `step`, mean over seeds."""
    return float(np.mean([dict(zip((r['iter'] for r in s['records']), train_seconds(s['records'])))[step]
                          for s in seed_runs.values()]))


def summarize(runs, baseline, missing=None):
    """Per variant: final loss, steps- and time-to-match, paired gap and step time, each over seeds; whether
    all its runs are there and finished (missing: {variant: seeds planned that have no log yet})."""
    b_steps, b_loss = mean_curve(runs[baseline])
    target, b_last = b_loss[:, -1].mean(), b_steps[-1]
    b_ms, b_seconds = mean_step_ms(runs[baseline]), seconds_at(runs[baseline], b_last)
    out = {}
    for variant, seed_runs in runs.items():
        steps, loss = mean_curve(seed_runs)
        mean = loss.mean(0)
        hit = [t for t, l in zip(steps, mean) if l <= target]
        per_seed_hit = [next((t for t, l in zip(steps, row) if l <= target), None) for row in loss]
        common = [s for s in seed_runs if s in runs[baseline]]
        final = {s: seed_runs[s]['records'][-1]['val_loss'] for s in seed_runs}
        gaps = [final[s] - runs[baseline][s]['records'][-1]['val_loss'] for s in common]
        ms = mean_step_ms(seed_runs)
        out[variant] = dict(
            seeds=sorted(seed_runs), params=next(iter(seed_runs.values()))['params'],
            steps=steps[-1], final=float(loss[:, -1].mean()), final_std=float(loss[:, -1].std(ddof=1)) if len(loss) > 1 else 0.0,
            match_step=hit[0] if hit else None, match_ratio=hit[0] / b_last if hit else None,
            match_ratio_seeds=[t / b_last if t is not None else None for t in per_seed_hit],
            match_time_ratio=seconds_at(seed_runs, hit[0]) / b_seconds if hit and b_seconds else None,
            gap=float(np.mean(gaps)) if gaps else None,
            gap_std=float(np.std(gaps, ddof=1)) if len(gaps) > 1 else None,
            gap_t=float(np.mean(gaps) / (np.std(gaps, ddof=1) / math.sqrt(len(gaps))))
            if len(gaps) > 1 and np.std(gaps) > 0 else None,
            step_ms=float(ms), time_ratio=float(ms / b_ms),
            max_iters=max(r['config'].get('max_iters', 0) for r in seed_runs.values()),
            complete=not (missing or {}).get(variant) and all(r['stopped'] is None for r in seed_runs.values()))
        smooth = [r['records'][-1].get('val_smoothness') for r in seed_runs.values()]
        if None not in smooth:  # runs on ordered bins (audio) log the smoothness of their predicted PMFs
            out[variant].update(smoothness=float(np.mean(smooth)),
                                smoothness_std=float(np.std(smooth, ddof=1)) if len(smooth) > 1 else 0.0)
    return out, float(target)


def paired_differences(runs):
    """Final val loss of row minus column, paired by seed: {(a, b): (mean, sd, n)}."""
    final = {v: {s: r['records'][-1]['val_loss'] for s, r in seed_runs.items()} for v, seed_runs in runs.items()}
    out = {}
    for a in runs:
        for b in runs:
            d = [final[a][s] - final[b][s] for s in final[a] if s in final[b]]
            out[a, b] = (float(np.mean(d)), float(np.std(d, ddof=1)) if len(d) > 1 else 0.0, len(d)) if d else \
                (None, None, 0)  # no seed in common: nothing to pair
    return out


def fmt(x, spec='.4f', none='-'):
    return none if x is None else format(x, spec)


def table(summary, baseline, target, missing=None):
    smooth = all('smoothness' in s for s in summary.values())
    lines = [f"Baseline `{baseline}` final val loss (mean over seeds): {target:.4f} nats = {target / math.log(2):.4f} bits/token.",
             "",
             "| variant | params | seeds | steps | final val loss (mean ± sd) | bits/token | steps-to-match (ratio; per seed) "
             "| time-to-match | final gap vs baseline (paired mean ± sd, t) | ms/step | time ratio |" +
             (" PMF smoothness (mean ± sd) |" if smooth else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if smooth else "")]
    for v, s in summary.items():
        per_seed = ', '.join(fmt(r, '.2f', 'not reached') for r in s['match_ratio_seeds'])
        match = 'not reached' if s['match_step'] is None else f"{s['match_step']} ({s['match_ratio']:.2f}; {per_seed})"
        match_time = fmt(s['match_time_ratio'], '.2f', 'not reached')
        if v == baseline:  # its own final loss: nothing to match
            match = match_time = '-'
        gap = '-' if v == baseline else 'no seed in common' if s['gap'] is None else \
            f"{fmt(s['gap'], '+.4f')} ± {fmt(s['gap_std'])}, t={fmt(s['gap_t'], '.1f')}"
        seeds = len(s['seeds']) + len((missing or {}).get(v, ()))
        seeds = f"{len(s['seeds'])} of {seeds}" if seeds > len(s['seeds']) else str(seeds)
        steps = f"{s['steps']} of {s['max_iters']}" if s['steps'] < s['max_iters'] else str(s['steps'])
        lines.append(f"| {v} | {s['params']:,} | {seeds} | {steps} | {s['final']:.4f} ± {s['final_std']:.4f} | "
                     f"{s['final'] / math.log(2):.4f} | {match} | {match_time} | "
                     f"{gap} | {s['step_ms']:.1f} | {s['time_ratio']:.3f} |" +
                     (f" {s['smoothness']:.4f} ± {s['smoothness_std']:.4f} |" if smooth else ""))
    return '\n'.join(lines) + '\n'


def difference_table(runs):
    diffs, names = paired_differences(runs), list(runs)
    lines = ["Final val loss, row minus column, paired by seed (mean ± sd over seeds; negative: row is better):", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in names:
        lines.append(f"| {a} | " + " | ".join('' if a == b else 'no seed in common' if not diffs[a, b][2] else
                                              f"{diffs[a, b][0]:+.4f} ± {diffs[a, b][1]:.4f}"
                                              for b in names) + " |")
    return '\n'.join(lines) + '\n'


def offsets(variant, seed_runs, runs):
    """(steps, training seconds) a variant's runs had before their own step 0: those of the run they were
    converted from (init_from), when it is in this comparison; (0, 0) for a run from scratch."""
    start = next(iter(seed_runs.values()))['started_from'] or {}
    steps = start.get('iter_num') or 0
    parts = os.path.normpath(start.get('path', '')).split(os.sep)
    source = runs.get(parts[-3]) if len(parts) >= 3 else None  # .../runs/<label>/seed<n>/ckpt.pt
    seconds = float(np.mean([train_seconds(r['records'])[-1] for r in source.values()])) if source else 0.0
    return steps, seconds


def plot(runs, path, title, notes=None):
    """curves.png: validation loss in bits per token against steps and against training time, a converted
    run drawn from where its source ended: above, each curve's whole story (its start, a conversion's jump);
    below, closer, the range where the curves part. Runs missing or not finished are named in the legend and
    the title. False (nothing drawn) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.4), height_ratios=(1, 1.6))
    bits = 1 / math.log(2)
    for i, (variant, seed_runs) in enumerate(runs.items()):
        color, (step0, second0) = f'C{i}', offsets(variant, seed_runs, runs)
        steps, loss = mean_curve(seed_runs)
        secs = np.array([[dict(zip((r['iter'] for r in s['records']), train_seconds(s['records'])))[t] for t in steps]
                         for s in seed_runs.values()])
        note = (notes or {}).get(variant)
        label = f"{variant} ({len(seed_runs)} seed{'s' if len(seed_runs) > 1 else ''})" + (f": {note}" if note else "")
        for row in axes:
            for ax, x in ((row[0], step0 + np.array(steps)), (row[1], second0 + secs.mean(0))):
                ax.plot(x, bits * loss.mean(0), color=color, label=label)
                ax.fill_between(x, bits * loss.min(0), bits * loss.max(0), color=color, alpha=0.2)
    hi = max(mean_curve(s)[1][:, min(1, len(mean_curve(s)[0]) - 1)].max() for s in runs.values()) * bits
    lo = min(mean_curve(s)[1].min() for s in runs.values()) * bits
    for row, what in zip(axes, ('whole runs', 'closer')):
        for ax, xl in zip(row, ('step', 'training seconds (evaluation excluded)')):
            ax.set_xlabel(xl)
            ax.set_ylabel(f'val loss, bits/token ({what})')
            ax.grid(alpha=0.3)
            if what == 'closer' and hi > lo:  # from the second evaluation down: the first (a jump) is above
                ax.set_ylim(lo - 0.02 * (hi - lo), hi)
    handles, labels = axes[0][0].get_legend_handles_labels()  # below the plots: it covers no curve
    ncol = max(1, min(4, len(labels), 120 // (max(map(len, labels)) + 8)))
    fig.legend(handles, labels, loc='lower center', ncol=ncol, fontsize=9, frameon=False)
    fig.suptitle(title + '  (line: mean over seeds; band: min to max)', fontsize=11)
    fig.tight_layout(rect=(0, 0.03 * -(-len(labels) // ncol) + 0.01, 1, 1))
    write_atomically(path, lambda tmp: fig.savefig(tmp, format='png', dpi=110, metadata={'Software': PNG_MARK}))
    plt.close(fig)
    return True


def write_text(path, text):
    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
    return write_atomically(path, write)


def missing_runs(results, runs, dirs):
    """{variant: [seeds]} of the runs this comparison plans (plan.json; before it, the seeds any variant has)
    that have no evaluation yet; none for run folders of your own."""
    if dirs:
        return {}
    try:
        with open(os.path.join(results, 'plan.json')) as f:
            planned = json.load(f)
        variants, seeds = list(planned['variants']), list(planned['seeds'])
    except (OSError, ValueError, KeyError, TypeError):
        variants, seeds = list(runs), sorted({s for seed_runs in runs.values() for s in seed_runs})
    return {v: [s for s in seeds if s not in runs.get(v, {})] for v in variants + [v for v in runs if v not in variants]
            if any(s not in runs.get(v, {}) for s in seeds)}


def incomplete(runs, missing, dirs):
    """({variant: a few words for the legend}, one line for above the table) about runs missing or not
    finished; ({}, '') when every run is there and finished."""
    notes, said, count = {}, [], 0
    for v in list(runs) + [v for v in missing if v not in runs]:
        seeds = missing.get(v, [])
        if seeds:
            count += len(seeds)
            said.append(f"{v} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}: no log yet")
            notes[v] = f"{len(seeds)} missing"
        for seed, r in runs.get(v, {}).items():
            if r['stopped']:
                count += 1
                said.append(f"{v}{'' if dirs else f' seed {seed}'}: {r['stopped']}")
                notes[v] = ', '.join(filter(None, [notes.get(v), r['stopped'].split(' (')[0]]))
    if not count:
        return {}, ''
    total = sum(len(r) for r in runs.values()) + sum(len(s) for v, s in missing.items())
    return notes, (f"**Incomplete: {count} of {total} runs missing or not finished** ({'; '.join(said)}). The numbers "
                   f"below are of what has run so far: a loss called final is the last one logged.")


def report(results, variants, dirs=()):
    """summary.md, summary.json and curves.png in results, from the comparison's runs (or from run folders).
    Everything is read and checked before the first file is written."""
    runs, header = load_runs(results, dirs)
    listed = [split_label(v)[0] for v in variants.split(',')] if not dirs else list(runs)
    runs = {v: runs[v] for v in [v for v in listed if v in runs] + [v for v in runs if v not in listed]}
    baseline = next(iter(runs))  # the first listed variant with runs
    missing = missing_runs(results, runs, dirs)
    notes, banner = incomplete(runs, missing, dirs)
    summary, target = summarize(runs, baseline, missing)
    c = next(iter(runs[baseline].values()))['config']  # the baseline's settings name the comparison
    longest = max(s['steps'] for s in summary.values())
    title = (f"{c['dataset']}: {c['n_layer']} layers x {c['n_embd']}, context {c['block_size']}, "
             f"batch {c['batch_size']}, {summary[baseline]['steps']} steps" +
             (f" (some runs {longest})" if longest != summary[baseline]['steps'] else ""))
    if banner:
        title = f"INCOMPLETE ({banner.split('**')[1][len('Incomplete: '):]})\n{title}"
    shared = shared_runs(results) if not dirs else 1
    md = f"# {title.splitlines()[-1]}\n\n" + (banner + "\n\n" if banner else "") + \
         f"Hardware: {header.get('hardware')} ({header.get('device')}, {header.get('threads')} threads), " \
         f"torch {header.get('torch')}." + (f" Up to {shared} runs shared the machine at a time (compare.py --jobs): the "
                                            f"time columns are not those of a run alone." if shared > 1 else "") + \
         "\n\n" + table(summary, baseline, target, missing) + "\n" + difference_table(runs)
    if dirs:
        print(f"baseline: {dirs[0]} (the first of --runs), named {baseline}", flush=True)
        wavelets = {v: next(iter(r.values()))['config'].get('wavelet') for v, r in runs.items()}
        plain = [v for v, w in wavelets.items() if w == 'none']
        if wavelets[baseline] not in (None, 'none') and plain:
            print(f"note: the baseline {baseline} has wavelet={wavelets[baseline]} and {plain[0]} has none: to measure "
                  f"the wavelet against the run without it, list that run first in --runs", file=sys.stderr)
    try:
        os.makedirs(results, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make results={results!r} ({reason(e, 80)}); give another --results")
    write_text(os.path.join(results, 'summary.md'), md)
    write_text(os.path.join(results, 'summary.json'), json.dumps(summary, indent=1))
    plotted = plot(runs, os.path.join(results, 'curves.png'), title, notes)
    print(md)
    print(f"wrote {results}/summary.md, summary.json" + (", curves.png" if plotted else
          "; no curves.png: matplotlib is not installed (pip install matplotlib, then --replot=True)"))


def main(argv):
    c, given = parse_config(argv, COMPARE, __doc__)
    dirs = [d for d in c['runs'].split(',') if d]
    if dirs and given & {'variants', 'seeds', 'replot', 'jobs'}:
        raise ConfigError(f"--runs draws runs you made: {', '.join(sorted(given & {'variants', 'seeds', 'replot', 'jobs'}))} "
                          f"do not apply (the first run is the baseline)")
    check_outputs(c['results'], c['replot'], own_runs=bool(dirs))
    inside = dataset_around(c['results']) or next((d for d in dirs if os.path.abspath(c['results']).startswith(
        os.path.join(os.path.abspath(d), ''))), None)
    if inside:  # an output is never inside an input: a dataset, or a run the comparison reads
        raise ConfigError(f"results={c['results']!r} is inside {inside} (a dataset, or a run the comparison reads); "
                          f"give a folder of its own, e.g. out/<name>")
    if not (c['replot'] or dirs):
        run_all(c)
    report(c['results'], c['variants'], dirs)


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

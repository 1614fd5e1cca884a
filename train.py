"""
Train a GPT, with or without the wavelet operation, on one CPU / GPU / Apple GPU or many GPUs.

    python train.py config/quickstart.py                    # 2 CPU cores, offline (results/quickstart: its time)
    python train.py config/text8_wavelet.py --max_iters=2000
    torchrun --standalone --nproc_per_node=8 train.py config/text8_wavelet.py

The settings and their defaults: TrainConfig in settings.py, SystemConfig in system.py, the model's
in model.GPTConfig (python train.py --help lists them all, with what each does). A config file
(plain assignments) overrides them, and --key=value overrides both; unknown keys, wrong types and
values out of range are one-line errors. The resolved settings go into the checkpoint and the first
line of out_dir/log.jsonl.

The story, in the order train() tells it: set up the process (device, dtype, DDP), open the dataset,
open the run (from scratch, resumed, or converted from another run's weights; the settings are
resolved once, here), then the loop: evaluate, log and save; stop on a signal; one optimisation step.
The model says what it computed (its losses), so nothing here asks which head, attention or wavelet
it runs. Batch i is drawn with a generator seeded by (seed, i): a resumed run sees exactly the data
an uninterrupted run would, and under DDP each rank takes its slice of the same global batch.
"""
import json
import math
import os
import platform
import signal
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
import torch
from torch.nn import functional as F

from checkpoints import (CHECKPOINT, LOG, check_new_log, claim_out_dir, load_checkpoint, load_model_state, load_pretrained,
                         end_at_a_line, not_a_checkpoint, save_checkpoint)
from outputs import run_log
from dataset import Dataset, tokens_differ
from errors import ConfigError, Interrupted, main_guard, reason
from generate import generate
from metrics import bits_per_byte, pmf_smoothness
from settings import TRAIN, contradicted, parse_config, resolve_model, resumed_settings
from system import autocast_context, build_model, check_batch_memory, pick_device, pick_dtype, use_threads


# ----------------------------------------------------------------------------------------------
# set up: where this process runs

@dataclass
class Env:
    device: torch.device
    dtype: str
    ddp: bool = False
    rank: int = 0
    world: int = 1

    @property
    def master(self):
        return self.rank == 0


def set_up(config, on_exit):
    """Threads, device and dtype; under torchrun, this process's rank in the DDP group (torn down on exit)."""
    use_threads(config['threads'])
    if int(os.environ.get('RANK', -1)) == -1:
        device = pick_device(config['device'], None)
        return Env(device, pick_dtype(config['dtype'], device))
    import torch.distributed as dist
    device = pick_device(config['device'], int(os.environ['LOCAL_RANK']))
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo')
    on_exit.callback(dist.destroy_process_group)
    return Env(device, pick_dtype(config['dtype'], device), True, int(os.environ['RANK']), int(os.environ['WORLD_SIZE']))


def check_resumed_dataset(config):
    """A resumed run goes on with its checkpoint's dataset: one named otherwise that is not built yet is refused
    before it is built (read_resume checks every other case, once the dataset is open)."""
    path = os.path.join(config['out_dir'], CHECKPOINT)
    if config['init_from'] != 'resume' or not os.path.isfile(path) or \
            os.path.exists(os.path.join('data', config['dataset'], 'meta.json')):
        return
    saved = load_checkpoint(path).get('config')
    trained_on = saved.get('dataset') if isinstance(saved, dict) else None
    if isinstance(trained_on, str) and trained_on != config['dataset']:
        raise ConfigError(f"{path} was trained on {trained_on!r}, not {config['dataset']!r}; drop --dataset to go on "
                          f"with it")


def open_dataset(name, env):
    """Rank 0 first: it may build the dataset, or put back one that an interrupted rebuild set aside."""
    data = Dataset(name) if env.master else None
    if env.ddp:
        import torch.distributed as dist
        dist.barrier()
    return data or Dataset(name, build=False)


def to_device(batch, device):
    x, y = (torch.from_numpy(a) for a in batch)
    if device.type == 'cuda':
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# ----------------------------------------------------------------------------------------------
# open the run: from scratch, resumed, or from another run's weights

@dataclass
class Run:
    """Everything the loop reads and updates. settings: resolved once (open_run), never written."""
    settings: dict
    model: torch.nn.Module          # what trains: maybe compiled, maybe wrapped by DDP
    raw_model: torch.nn.Module      # what gets saved: never a wrapper (no '_orig_mod.' keys)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: object
    path: str                       # out_dir/ckpt.pt
    source: dict = None             # where the weights came from (init_from), for the log and the checkpoint
    iter_num: int = 0
    best_val: float = math.inf
    start_iter: int = 0
    val_bytes: float = None         # the bytes the fixed validation windows stand for (datasets with byte counts)
    board: object = None            # a TensorBoard SummaryWriter (tensorboard=True, rank 0), or None
    records: list = field(default_factory=list)
    step_time: float = 0.0          # training time since the last evaluation, and its steps
    steps_timed: int = 0
    clock: float = field(default_factory=time.time)  # when those steps began
    shown: float = 0.0              # when the step loss was last read back from the device (show_loss)
    started: float = field(default_factory=time.time)
    world: int = 1                  # processes (DDP), for the checkpoint: a resume compares the global batch
    stop: dict = None               # the loop's stop request ({'signal': None or its name}; stop_on_signal)


TRAINING_STATE = {'optimizer', 'scaler', 'rng', 'iter_num', 'best_val_loss', 'config'}  # what resume needs


def read_resume(config, data, path):
    """The checkpoint a resumed run goes on from, checked against the dataset."""
    if not os.path.exists(path):
        raise ConfigError(f"init_from='resume' but {path} does not exist; train from scratch first")
    ckpt = load_checkpoint(path)
    if not TRAINING_STATE <= set(ckpt):
        raise ConfigError(f"{path} holds weights only, not a training state to resume; train from scratch in "
                          f"another out_dir")
    trained_on = ckpt['config'].get('dataset') if isinstance(ckpt['config'], dict) else None
    if not isinstance(trained_on, str):
        raise ConfigError(f"{path} holds a damaged training state (its config names no dataset); train from scratch "
                          f"in another out_dir")
    if trained_on != data.name:
        raise ConfigError(f"{path} was trained on {trained_on!r}, not {data.name!r}; drop --dataset to go on with it")
    if ckpt['model_args']['vocab_size'] != data.vocab_size:
        raise ConfigError(f"{path} has a vocabulary of {ckpt['model_args']['vocab_size']} tokens, but data/{data.name} "
                          f"now has {data.vocab_size}: the dataset was rebuilt differently; rebuild it as before, or "
                          f"train from scratch in a new out_dir")
    return ckpt


def read_source(path, data):
    """The checkpoint whose weights a run starts from (init_from=<ckpt.pt>), checked against the dataset."""
    source = load_checkpoint(path)
    if source['model_args']['vocab_size'] != data.vocab_size:
        raise ConfigError(f"{path} has a vocabulary of {source['model_args']['vocab_size']} tokens, data/{data.name} "
                          f"has {data.vocab_size}; start from a model of this dataset")
    other = tokens_differ(source['meta'], data.meta)
    if other:
        raise ConfigError(f"{path} was trained on other tokens than data/{data.name} holds ({other}, of one "
                          f"vocabulary size); start from a model of this dataset's tokens")
    return source


def restore_training_state(ckpt, path, run):
    """The optimiser, gradient scaler, random state and counters of a checkpoint (its weights are loaded
    already). A state that does not fit is a one-line error."""
    try:
        run.optimizer.load_state_dict(ckpt['optimizer'])
        run.scaler.load_state_dict(ckpt['scaler'])
        torch.set_rng_state(ckpt['rng'])  # dropout continues as it would have
        run.iter_num, run.best_val = ckpt['iter_num'], float(ckpt['best_val_loss'])
        if type(run.iter_num) is not int or run.iter_num < 0:
            raise ValueError(f"iter_num={run.iter_num!r}")
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{path} holds a damaged training state ({reason(e, 80)}); it cannot be resumed: "
                          f"train from scratch in another out_dir")
    run.start_iter, max_iters = run.iter_num, run.settings['max_iters']
    if run.iter_num >= max_iters and not run.settings['eval_only']:
        raise ConfigError(f"{path} is at iter {run.iter_num} already, and max_iters={max_iters}: nothing to "
                          f"train; raise max_iters to go on (--eval_only=True evaluates it)")


def open_run(config, given, data, env, on_exit):
    """The settings resolved once (the model of a resumed run or of the source, what depends on the dataset),
    the model built and loaded, out_dir claimed, the optimiser (restored on resume). Nothing is written before
    every check has passed."""
    path = os.path.join(config['out_dir'], 'ckpt.pt')
    resume, convert = config['init_from'] == 'resume', config['init_from'] not in ('scratch', 'resume')
    ckpt = read_resume(config, data, path) if resume else read_source(config['init_from'], data) if convert else None
    if resume:  # the checkpoint's seed, batch size, learning rate...: told otherwise, say so
        config = resumed_settings(config, given, ckpt['config'], path, env.world, ckpt.get('world_size'))
    settings, gpt_config = resolve_model(config, given, data, ckpt and ckpt['model_args'], keep=resume,
                                         source=path if resume else config['init_from'])
    check_batch_memory(settings, env.world, env.device)
    torch.manual_seed(settings['seed'])  # the same initial weights on every rank and for every variant
    model = build_model(gpt_config)  # before out_dir is claimed: a model that cannot be built leaves nothing behind
    source = ckpt.get('source') if resume else None  # a converted run, resumed: still say where it came from
    if resume:
        load_model_state(model, ckpt['model'], path)
    elif convert:
        source = {'path': config['init_from'], 'iter_num': ckpt.get('iter_num'),
                  'new_tensors': load_pretrained(model, ckpt['model'], config['init_from'],
                                                 contradicted(config, given, ckpt['model_args']))}
    if env.master:  # before anything is written to out_dir: it is ours, writable, and holds no work we would lose
        on_exit.enter_context(claim_out_dir(settings['out_dir']))
        if not resume and os.path.lexists(path):  # replaced only when the project can tell it wrote it
            why = not_a_checkpoint(path)
            if why:
                raise ConfigError(f"{path} exists and is no checkpoint ({why}); move it, or use another out_dir")
            if not settings['overwrite']:
                raise ConfigError(f"{path} holds a run already; go on with it with --init_from=resume, replace it "
                                  f"with --overwrite=True, or use another out_dir")
        log = os.path.join(settings['out_dir'], LOG)
        if not resume:  # a log without its checkpoint (deleted to save space), or a file of the user's of that name
            check_new_log(log, settings['overwrite'])
        elif os.path.lexists(log) and not run_log(log):  # a resumed run appends: only to a log of its own
            raise ConfigError(f"{log} is not a log that train.py wrote, and resuming would write into it; move it, "
                              f"or resume in the run's own folder")
    model.to(env.device)
    optimizer = model.configure_optimizers(settings['weight_decay'], settings['learning_rate'],
                                           (settings['beta1'], settings['beta2']), env.device.type)
    run = Run(settings, model, model, optimizer, torch.amp.GradScaler(env.device.type, enabled=env.dtype == 'float16'),
              autocast_context(env.device, env.dtype), path, source, world=env.world)
    if resume:
        restore_training_state(ckpt, path, run)
    if settings['compile']:
        run.model = torch.compile(run.model)
    if env.ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        # every buffer of the model is a constant of its config (the wavelet's indices, RoPE's tables): none to
        # send from rank 0 at every step, as DDP does by default
        run.model = DDP(run.model, device_ids=[env.device.index] if env.device.type == 'cuda' else None,
                        broadcast_buffers=False)
    return run


def tensorboard_writer(config):
    """TensorBoard's SummaryWriter class for tensorboard=True, found before any work (else None)."""
    if not config['tensorboard']:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("tensorboard=True needs the tensorboard package: pip install tensorboard (or drop the setting; "
                          "log.jsonl holds the same numbers)")
    return SummaryWriter


def open_log(run, data, env, on_exit, board=None):
    """out_dir/log.jsonl (rank 0), its first line the run's header; a line to the console; TensorBoard's
    writer if asked (board: its class). None on other ranks."""
    if not env.master:
        return None
    c = run.settings
    if board:
        run.board = board(os.path.join(c['out_dir'], 'tensorboard'))
        on_exit.callback(run.board.close)
    path = os.path.join(c['out_dir'], LOG)
    if c['init_from'] == 'resume' and os.path.exists(path):
        end_at_a_line(path)
    log = on_exit.enter_context(open(path, 'a' if c['init_from'] == 'resume' else 'w'))
    header = {'config': c, 'argv': sys.argv, 'python': platform.python_version(), 'torch': torch.__version__,
              'numpy': np.__version__, 'device': str(env.device), 'dtype': env.dtype,
              'hardware': torch.cuda.get_device_name(env.device) if env.device.type == 'cuda'
              else platform.processor() or platform.machine(),
              'threads': torch.get_num_threads(), 'started': time.strftime('%Y-%m-%d %H:%M:%S'),
              **run.raw_model.describe(), 'tokens_per_iter': tokens_per_iter(run, env), 'world_size': env.world,
              'resumed_at': run.iter_num if c['init_from'] == 'resume' else None, 'started_from': run.source}
    log.write(json.dumps(header) + '\n')
    log.flush()
    print(f"{data.name}: {data.size('train'):,} train / {data.size('val'):,} val tokens, vocab {data.vocab_size} | "
          f"{run.raw_model.get_num_params():,} params, {run.raw_model.options()} | {env.device} {env.dtype} x{env.world} | "
          f"{tokens_per_iter(run, env):,} tokens/iter")
    if c['decay_lr'] and c['warmup_iters'] >= c['max_iters'] > run.iter_num:  # every check passed: a word, then work
        print(f"warning: warmup_iters={c['warmup_iters']} is not below max_iters={c['max_iters']}: the learning rate "
              f"never reaches learning_rate={c['learning_rate']}; set warmup_iters lower (e.g. "
              f"{max(1, c['max_iters'] // 10)})", file=sys.stderr)
    return log


def tokens_per_iter(run, env):
    c = run.settings
    return c['batch_size'] * env.world * c['gradient_accumulation_steps'] * c['block_size']


# ----------------------------------------------------------------------------------------------
# evaluate, log and save

def eval_windows(run, env):
    """How many fixed windows each evaluation reads per split: the same whatever the split into processes."""
    return run.settings['eval_iters'] * run.settings['batch_size'] * env.world


@torch.no_grad()
def evaluate(run, data, env):
    """The mean of each of the model's losses over fixed windows of each split (under DDP each rank takes
    every world-th window), and for ordered bins the smoothness of the PMFs predicted at fixed positions of
    the first validation batch. Returns ({split: {loss name: mean}}, smoothness or None)."""
    run.model.eval()
    means, smoothness, T, bs = {}, None, run.settings['block_size'], run.settings['batch_size']
    for split in ('train', 'val'):
        offsets = data.eval_offsets(split, T, eval_windows(run, env))[env.rank::env.world]
        total = 0  # per loss: its sum over windows; last: the windows
        for i in range(0, len(offsets), bs):
            abandon_if_stopped(run, env)
            x, y = to_device(data.batch(split, offsets[i:i + bs], T), env.device)
            with run.autocast:
                logits, losses = run.model(x, y)
            names = [k for k in losses if k != 'loss']
            total = total + torch.tensor([losses[k].item() * len(x) for k in names] + [len(x)], device=env.device,
                                         dtype=torch.float64)
            if split == 'val' and i == 0 and data.ordered is not None:
                smoothness = predicted_smoothness(logits, data.ordered)
        if env.ddp:
            import torch.distributed as dist
            dist.all_reduce(total)
        means[split] = {k: (total[j] / total[-1]).item() for j, k in enumerate(names)}
    run.model.train()
    return means, smoothness


def predicted_smoothness(logits, bins):
    """pmf_smoothness of the distributions over the ordered bins at 128 evenly spaced positions."""
    probs = F.softmax(logits.float(), -1)[..., bins.start:bins.stop].flatten(0, 1)
    rows = torch.linspace(0, len(probs) - 1, min(128, len(probs))).long()
    return pmf_smoothness((probs[rows] / probs[rows].sum(-1, keepdim=True)).cpu())


def record(run, env, means, smoothness):
    """One line of log.jsonl: the losses (nats per token), bits per byte where the dataset has byte counts."""
    c = run.settings
    rec = {'iter': run.iter_num, 'train_loss': means['train']['nll'], 'val_loss': means['val']['nll'],
           **{f'val_{k}': v for k, v in means['val'].items() if k != 'nll'},
           **({'val_smoothness': smoothness} if smoothness is not None else {}),
           'lr': get_lr(max(run.iter_num - 1, 0), c), 'tokens': run.iter_num * tokens_per_iter(run, env),
           'time': round(time.time() - run.started, 3),
           'step_ms': round(1000 * run.step_time / run.steps_timed, 2) if run.steps_timed else None}
    if run.val_bytes:
        rec['val_bpb'] = bits_per_byte(rec['val_loss'], eval_windows(run, env) * c['block_size'], run.val_bytes)
    return rec


def report(run, rec, log, bar, env):
    """The record to the console and log.jsonl (rank 0); a loss that is not finite stops the run."""
    if not all(math.isfinite(rec[k]) for k in rec if k.endswith('_loss')):
        raise diverged(f"loss is {rec['train_loss']} (train), {rec['val_loss']} (val) at iter {run.iter_num}", env.dtype)
    run.best_val = min(run.best_val, rec['val_loss'])
    run.records.append(rec)
    run.step_time, run.steps_timed = 0.0, 0
    if log is not None:
        bpb = f", {rec['val_bpb']:.4f} bits/byte" if 'val_bpb' in rec else ""
        bar.write(f"iter {run.iter_num}: train {rec['train_loss']:.4f}, val {rec['val_loss']:.4f} "
                  f"({rec['val_loss'] / math.log(2):.4f} bits/token{bpb})")
        log.write(json.dumps(rec) + '\n')
        log.flush()
    if run.board is not None:
        for key, value in rec.items():
            if key != 'iter' and isinstance(value, (int, float)):
                run.board.add_scalar(key, value, rec['iter'])


def save(run, data):
    save_checkpoint(run.path, {
        'model': run.raw_model.state_dict(), 'optimizer': run.optimizer.state_dict(), 'scaler': run.scaler.state_dict(),
        'model_args': asdict(run.raw_model.config), 'config': run.settings, 'meta': data.meta, 'iter_num': run.iter_num,
        'best_val_loss': run.best_val, 'rng': torch.get_rng_state(), 'source': run.source, 'world_size': run.world})


def diverged(what, dtype):
    """The error for a loss that is no longer finite, with the advice that fits this dtype."""
    return ConfigError(f"{what}: the run diverged; lower learning_rate (or set grad_clip)" +
                       (", or use dtype='bfloat16' if this GPU has it" if dtype == 'float16' else "") +
                       " (the last good checkpoint, if any, is intact)")


# ----------------------------------------------------------------------------------------------
# one optimisation step, and stopping on a signal

def get_lr(it, c):
    """Linear warmup, then cosine decay to min_lr at lr_decay_iters (0: max_iters)."""
    decay_iters = c['lr_decay_iters'] or c['max_iters']
    if not c['decay_lr']:
        return c['learning_rate']
    if it < c['warmup_iters']:
        return c['learning_rate'] * (it + 1) / (c['warmup_iters'] + 1)
    if it >= decay_iters:
        return c['min_lr']
    ratio = (it - c['warmup_iters']) / max(1, decay_iters - c['warmup_iters'])
    return c['min_lr'] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c['learning_rate'] - c['min_lr'])


def train_step(run, data, env):
    """One optimisation step over the global batch, this rank's slice in gradient accumulation micro-steps.
    Returns the mean loss, a tensor on the device, and the learning rate. Nothing here waits for the device
    (no .item(), no synchronize): on a GPU the host queues the next step while this one runs, and the loss
    is read back only when it is shown (show_loss)."""
    c = run.settings
    T, bs, accum = c['block_size'], c['batch_size'], c['gradient_accumulation_steps']
    lr = get_lr(run.iter_num, c)
    for group in run.optimizer.param_groups:
        group['lr'] = lr
    offsets = data.train_offsets(c['seed'], 0 if c['overfit_single_batch'] else run.iter_num, T, bs * env.world * accum)
    loss_sum = 0
    for micro in range(accum):
        abandon_if_stopped(run, env)
        start = (micro * env.world + env.rank) * bs
        x, y = to_device(data.batch('train', offsets[start:start + bs], T), env.device)
        if env.ddp:  # all-reduce gradients on the last micro-step only
            run.model.require_backward_grad_sync = micro == accum - 1
        with run.autocast:
            _, losses = run.model(x, y)
        run.scaler.scale(losses['loss'] / accum).backward()
        loss_sum = loss_sum + losses['loss'].detach() / accum
    if c['grad_clip']:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), c['grad_clip'])
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.steps_timed += 1
    run.iter_num += 1
    return loss_sum, lr


def lap(run, env):
    """The training time since run.clock, when the device has finished what it was given (steps do not wait)."""
    if env.device.type == 'cuda':
        torch.cuda.synchronize()
    run.step_time = time.time() - run.clock


def show_loss(run, loss, lr, bar, env):
    """The last step's loss on the progress bar (and TensorBoard), read back from the device at most once a
    second: reading it waits for the step. A loss that is not finite stops the run."""
    if run.board is None and time.time() - run.shown < 1.0:
        return
    run.shown, value = time.time(), loss.item()
    if not math.isfinite(value):
        raise diverged(f"loss is {value} at iter {run.iter_num}", env.dtype)
    bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}", refresh=False)
    if run.board is not None:  # every step: with TensorBoard on, the host waits for each step
        run.board.add_scalar('step_loss', value, run.iter_num)


@contextmanager
def stop_on_signal():
    """Ctrl-C and SIGTERM set a flag, so the step in flight finishes and the run can save;
    a second one stops at once. The previous handlers come back afterwards."""
    stop = {'signal': None}

    def handler(signum, frame):
        if stop['signal']:
            raise Interrupted(f"{signal.Signals(signum).name} twice: stopped without saving")
        stop['signal'] = signal.Signals(signum).name
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Abandoned(Exception):
    """A stop request met inside a step or an evaluation (see abandon_if_stopped)."""


def abandon_if_stopped(run, env):
    """Between the micro-steps of a step and the batches of an evaluation, with one process: Ctrl-C or SIGTERM
    ends it there (the step is dropped, the run saved as it was before it), not after a step that may take
    hours (gradient_accumulation_steps, eval_iters). Under DDP the ranks agree on stopping between steps only."""
    if not env.ddp and run.stop is not None and run.stop["signal"]:
        raise Abandoned


def stop_requested(stop, env):
    """Under DDP every rank must leave the loop at the same step, so ranks agree on the flag."""
    if not env.ddp:
        return stop['signal'] is not None
    import torch.distributed as dist
    flag = torch.tensor([stop['signal'] is not None], dtype=torch.int32, device=env.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    stop['signal'] = stop['signal'] or ('SIGTERM' if flag.item() else None)
    return bool(flag.item())


def save_and_stop(run, data, env, stop):
    if env.master:
        save(run, data)
    if env.ddp:  # every rank stops at this step: they leave together once rank 0 has saved
        import torch.distributed as dist
        dist.barrier()
    raise Interrupted(f"{stop['signal']}: saved {run.path} at iter {run.iter_num}; continue with --init_from=resume")


# ----------------------------------------------------------------------------------------------
# the story

def train(config, given=()):
    """Train as config says (given: the keys a config file or the command line set). Returns the list of
    evaluation records written to log.jsonl. However it ends, out_dir is released and a DDP process group
    is torn down."""
    board = tensorboard_writer(config)
    with ExitStack() as on_exit:
        env = set_up(config, on_exit)
        check_resumed_dataset(config)
        data = open_dataset(config['dataset'], env)
        run = open_run(config, given, data, env, on_exit)
        log = open_log(run, data, env, on_exit, board)
        c, T = run.settings, run.settings['block_size']
        run.val_bytes = data.bytes_covered('val', data.eval_offsets('val', T, eval_windows(run, env)), T)
        from tqdm import tqdm
        bar = on_exit.enter_context(tqdm(total=c['max_iters'], initial=run.iter_num, disable=not env.master,
                                         dynamic_ncols=True, mininterval=1.0))  # closed however the run ends
        with stop_on_signal() as stop:
            run.stop = stop
            try:
                while True:
                    # evaluate, log and save every eval_interval steps and at the end (a resumed run has its record)
                    resumed_here = run.iter_num == run.start_iter and c['init_from'] == 'resume'
                    due = run.iter_num % c['eval_interval'] == 0 or run.iter_num >= c['max_iters']
                    if (due or c['eval_only']) and (c['eval_only'] or not resumed_here):
                        lap(run, env)
                        report(run, record(run, env, *evaluate(run, data, env)), log, bar, env)
                        if env.master and not c['eval_only'] and run.iter_num > run.start_iter:
                            save(run, data)
                        run.clock = time.time()
                    if run.iter_num >= c['max_iters'] or c['eval_only']:
                        break
                    # Ctrl-C or SIGTERM: save, then stop (every DDP rank at this same step)
                    if stop_requested(stop, env):
                        save_and_stop(run, data, env, stop)
                    # one optimisation step over the global batch
                    loss, lr = train_step(run, data, env)
                    bar.update(1)
                    show_loss(run, loss, lr, bar, env)
            except Abandoned:  # a stop request inside a long step or evaluation (one process): that step is dropped
                run.optimizer.zero_grad(set_to_none=True)
                if c['eval_only']:
                    raise Interrupted(f"{stop['signal']}: stopped during the evaluation")
                save_and_stop(run, data, env, stop)
        bar.close()
        if env.master:
            finish(run, data, env, log)
        if env.ddp:  # no rank tears the group down (on_exit) while another is still at work, e.g. rank 0 saving
            import torch.distributed as dist
            dist.barrier()
        return run.records


def finish(run, data, env, log):
    """A short sample (text datasets, sample_tokens > 0) and the final validation loss."""
    log.close()
    tok, n = data.tokenizer, run.settings['sample_tokens']
    if n and tok.text:
        prompt = torch.tensor([tok.start()], dtype=torch.long, device=env.device)
        g = torch.Generator(device=env.device).manual_seed(run.settings['seed'])
        out = generate(run.raw_model.eval(), prompt, n, temperature=0.8, generator=g)
        print('sample: ' + tok.decode(out[0, prompt.size(1):].tolist()))
    if run.records:
        r = run.records[-1]
        print(f"final val loss {r['val_loss']:.4f} ({r['val_loss'] / math.log(2):.4f} bits/token" +
              (f", {r['val_bpb']:.4f} bits/byte" if 'val_bpb' in r else "") + f") at iter {r['iter']}")


def main(argv):
    config, given = parse_config(argv, TRAIN, __doc__)
    train(config, given)


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

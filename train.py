"""
Train a GPT, with or without the wavelet operation, on one CPU / GPU / Apple GPU or many GPUs.

    python train.py config/quickstart.py                    # 2 CPU cores, a few minutes, offline
    python train.py config/text8_wavelet.py --max_iters=2000
    torchrun --standalone --nproc_per_node=8 train.py config/text8_wavelet.py

Every setting below is a plain default; a config file (plain assignments) overrides them, and
--key=value overrides both. Unknown keys and wrong types are errors. The resolved config goes into
the checkpoint and the first line of out_dir/log.jsonl.

Data: data/<dataset>/{train,val}.bin and meta.json, written by prepare/*.py. Batch i is drawn by a
generator seeded with (seed, i), so a resumed run sees exactly the data an uninterrupted run would,
and under DDP each rank takes its slice of the same global batch.
"""
import ast
import json
import math
import os
import platform
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, fields

import numpy as np
import torch

from model import GPT, GPTConfig
from prepare.common import DTYPES, DatasetError, check_token_range, read_meta

DEFAULTS = dict(
    # I/O
    out_dir='out',
    init_from='scratch',        # 'scratch' | 'resume' (from out_dir/ckpt.pt)
    eval_interval=250,          # evaluate, log and checkpoint every this many iterations
    eval_iters=20,              # evaluation uses eval_iters * batch_size * world_size fixed windows per split
    eval_only=False,
    sample_tokens=0,            # print a sample of this many tokens at the end (text datasets)
    # data
    dataset='pydocs',           # data/<dataset>/; 'pydocs' is built offline on first use
    batch_size=32,              # sequences per process per micro-step
    gradient_accumulation_steps=1,
    block_size=512,
    overfit_single_batch=False,  # train on batch 0 forever: the quickest proof that the model learns
    # model (GPTConfig; vocab_size comes from the dataset)
    n_layer=10, n_head=8, n_embd=128, dropout=0.0, bias=True,
    wavelet='none',             # 'none' | 'haar' | 'learnable' | 'ema' (control)
    wavelet_frac=0.5, wavelet_levels=0, wavelet_pad='zero', wavelet_max_kernel=0,
    wavelet_last=True, wavelet_window=0,
    # AdamW with linear warmup and cosine decay
    learning_rate=1e-3, max_iters=5000, weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0,
    decay_lr=True, warmup_iters=200, lr_decay_iters=0, min_lr=1e-4,  # lr_decay_iters 0: max_iters
    # system
    device='auto',              # 'auto' | 'cpu' | 'cuda' | 'cuda:1' | 'mps'
    dtype='auto',               # 'auto' (bfloat16 on GPUs that have it, else float16; float32 on CPU) | 'float32' | 'bfloat16' | 'float16'
    compile=False,              # torch.compile the model (CUDA)
    seed=1337,
)
CHOICES = dict(init_from=('scratch', 'resume'), wavelet=('none', 'haar', 'learnable', 'ema'),
               wavelet_pad=('zero', 'valid'), dtype=('auto', 'float32', 'bfloat16', 'float16'))
AUTO_PREPARE = {'pydocs'}  # datasets that need no download: built on first use


class ConfigError(Exception):
    pass


def parse_config(argv, defaults=DEFAULTS):
    """defaults <- config files (plain assignments) <- --key=value, each checked by name and type."""
    config = dict(defaults)

    def set_key(key, value, where):
        if key not in defaults:
            raise ConfigError(f"unknown config key {key!r} in {where}; known keys: {', '.join(defaults)}")
        want = type(defaults[key])
        if want is float and type(value) is int:
            value = float(value)
        if type(value) is not want:
            raise ConfigError(f"{key}={value!r} in {where} should be a {want.__name__} (default {defaults[key]!r})")
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"{key}={value!r} in {where}: choose one of {', '.join(map(repr, CHOICES[key]))}")
        config[key] = value

    for arg in argv:
        if arg.startswith('--'):
            key, eq, text = arg[2:].partition('=')
            if not eq:
                raise ConfigError(f"{arg}: write --{key}=value")
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text  # a bare string: --wavelet=haar
            if type(defaults.get(key)) is str and type(value) is not str:
                value = text  # a string key keeps its text: --seeds=1,2,3
            set_key(key, value, arg)
        else:
            if not os.path.exists(arg):
                raise ConfigError(f"config file {arg} does not exist")
            scope = {}
            exec(open(arg).read(), {}, scope)
            for key, value in scope.items():
                if not key.startswith('_'):
                    set_key(key, value, arg)
    return config


def model_config(config, vocab_size):
    args = {f.name: config[f.name] for f in fields(GPTConfig) if f.name in config}
    return GPTConfig(**dict(args, vocab_size=vocab_size))


# ----------------------------------------------------------------------------------------------
# data

def load_dataset(name, master=True):
    data_dir = os.path.join('data', name)
    if name in AUTO_PREPARE and not os.path.exists(os.path.join(data_dir, 'meta.json')) and master:
        from prepare import pydocs
        print(f"building the offline dataset {data_dir} (first run only)")
        pydocs.build(data_dir)
    meta = read_meta(data_dir)
    check_token_range(data_dir, meta)
    return data_dir, meta


def open_split(data_dir, meta, split):
    # a fresh memmap per use: a long-lived one keeps growing the process's resident memory
    return np.memmap(os.path.join(data_dir, f'{split}.bin'), dtype=DTYPES[meta['dtype']], mode='r')


def get_batch(data, offsets, block_size, device):
    x = torch.from_numpy(np.stack([data[o:o + block_size] for o in offsets]).astype(np.int64))
    y = torch.from_numpy(np.stack([data[o + 1:o + 1 + block_size] for o in offsets]).astype(np.int64))
    if device.type == 'cuda':
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def batch_offsets(seed, it, n_tokens, block_size, count):
    """Window starts of global batch `it`: a function of (seed, it) alone."""
    rng = np.random.default_rng([seed, it])
    return rng.integers(0, n_tokens - block_size, size=count)


def eval_offsets(n_tokens, block_size, count):
    """Evenly spaced windows over the whole split: the same for every eval and every run."""
    return np.linspace(0, n_tokens - block_size - 1, count).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# training

def get_lr(it, c):
    decay_iters = c['lr_decay_iters'] or c['max_iters']
    if not c['decay_lr']:
        return c['learning_rate']
    if it < c['warmup_iters']:
        return c['learning_rate'] * (it + 1) / (c['warmup_iters'] + 1)
    if it >= decay_iters:
        return c['min_lr']
    ratio = (it - c['warmup_iters']) / max(1, decay_iters - c['warmup_iters'])
    return c['min_lr'] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c['learning_rate'] - c['min_lr'])


def pick_device(name, local_rank):
    if name == 'auto':
        if torch.cuda.is_available():
            name = 'cuda'
        elif torch.backends.mps.is_available():
            name = 'mps'
        else:
            name = 'cpu'
    if name == 'cuda' and local_rank is not None:
        name = f'cuda:{local_rank}'
    return torch.device(name)


def pick_dtype(name, device):
    if name == 'auto':
        if device.type == 'cuda':
            return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
        return 'float32'
    return name


@contextmanager
def stop_on_signal():
    """Ctrl-C and SIGTERM set a flag, so the step in flight finishes and the run can save;
    a second one stops at once. The previous handlers come back afterwards."""
    stop = {'signal': None}

    def handler(signum, frame):
        if stop['signal']:
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} twice: stopped without saving")
        stop['signal'] = signal.Signals(signum).name
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stop_requested(stop, ddp, device):
    """Under DDP every rank must leave the loop at the same step, so ranks agree on the flag."""
    if not ddp:
        return stop['signal'] is not None
    import torch.distributed as dist
    flag = torch.tensor([stop['signal'] is not None], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    stop['signal'] = stop['signal'] or ('SIGTERM' if flag.item() else None)
    return bool(flag.item())


def autocast_context(device, dtype):
    """Mixed precision for GPU dtypes; float32 needs none."""
    return nullcontext() if dtype == 'float32' else torch.autocast(device.type, dtype=getattr(torch, dtype))


def load_model_state(model, state):
    """Load weights, also from checkpoints of a torch.compile'd model (keys prefixed '_orig_mod.')."""
    model.load_state_dict({k.removeprefix('_orig_mod.'): v for k, v in state.items()})


def save_checkpoint(path, state):
    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)  # the previous checkpoint stays whole until the new one is complete


def run_header(config, device, dtype):
    return {'config': config, 'argv': sys.argv, 'python': platform.python_version(),
            'torch': torch.__version__, 'numpy': np.__version__, 'device': str(device), 'dtype': dtype,
            'hardware': torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine(),
            'threads': torch.get_num_threads(), 'started': time.strftime('%Y-%m-%d %H:%M:%S')}


def train(config):
    """Train as config says. Returns the list of eval records written to log.jsonl."""
    c = config
    ddp = int(os.environ.get('RANK', -1)) != -1
    if ddp:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
        device = pick_device(c['device'], int(os.environ['LOCAL_RANK']))
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo')
    else:
        rank, world = 0, 1
        device = pick_device(c['device'], None)
    master = rank == 0
    dtype = pick_dtype(c['dtype'], device)
    if dtype != 'float32' and device.type == 'cpu':
        raise ConfigError(f"dtype={dtype} is for GPUs; use dtype=float32 on CPU")

    data_dir, meta = load_dataset(c['dataset'], master)
    if ddp:
        dist.barrier()  # rank 0 may have built the dataset
        data_dir, meta = load_dataset(c['dataset'], master)
    n_train = len(open_split(data_dir, meta, 'train'))
    n_val = len(open_split(data_dir, meta, 'val'))
    if min(n_train, n_val) <= c['block_size'] + 1:
        raise ConfigError(f"block_size={c['block_size']} needs more than that many tokens per split "
                          f"(train {n_train}, val {n_val}); lower block_size or give more data")

    ckpt_path = os.path.join(c['out_dir'], 'ckpt.pt')
    ckpt = None
    if c['init_from'] == 'resume':
        if not os.path.exists(ckpt_path):
            raise ConfigError(f"init_from='resume' but {ckpt_path} does not exist; train from scratch first")
        ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
        if ckpt['config']['dataset'] != c['dataset']:
            raise ConfigError(f"{ckpt_path} was trained on {ckpt['config']['dataset']!r}, not {c['dataset']!r}")
        for k in (f.name for f in fields(GPTConfig)):  # the architecture is the checkpoint's
            if k in c:
                c[k] = ckpt['config'][k]

    torch.manual_seed(c['seed'])  # the same initial weights on every rank and for every variant
    try:
        model = GPT(model_config(c, meta['vocab_size']))
    except ValueError as e:
        raise ConfigError(str(e))
    if ckpt is not None:
        load_model_state(model, ckpt['model'])
    model.to(device)
    raw_model = model  # what gets saved: never the compiled or DDP wrapper (no '_orig_mod.' keys)
    optimizer = model.configure_optimizers(c['weight_decay'], c['learning_rate'], (c['beta1'], c['beta2']), device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == 'float16')
    iter_num, best_val = 0, float('inf')
    if ckpt is not None:
        optimizer.load_state_dict(ckpt['optimizer'])
        scaler.load_state_dict(ckpt['scaler'])
        torch.set_rng_state(ckpt['rng'])  # dropout continues as it would have
        iter_num, best_val = ckpt['iter_num'], ckpt['best_val_loss']
        del ckpt
    if c['compile']:
        model = torch.compile(model)
    if ddp:
        model = DDP(model, device_ids=[device.index] if device.type == 'cuda' else None)
    autocast = autocast_context(device, dtype)

    bs, T, accum = c['batch_size'], c['block_size'], c['gradient_accumulation_steps']
    global_batch = bs * world * accum
    tokens_per_iter = global_batch * T
    n_eval = c['eval_iters'] * bs * world  # the same windows whatever the split into processes

    @torch.no_grad()
    def evaluate():
        """Mean loss over fixed windows of each split; under DDP each rank takes every world-th window."""
        model.eval()
        out = {}
        for split, n in (('train', n_train), ('val', n_val)):
            data = open_split(data_dir, meta, split)
            offsets = eval_offsets(n, T, n_eval)[rank::world]
            total = torch.zeros(2, device=device, dtype=torch.float64)
            for i in range(0, len(offsets), bs):
                x, y = get_batch(data, offsets[i:i + bs], T, device)
                with autocast:
                    _, loss = model(x, y)
                total += torch.tensor([loss.item() * len(x), len(x)], device=device, dtype=torch.float64)
            if ddp:
                dist.all_reduce(total)
            out[split] = (total[0] / total[1]).item()
        model.train()
        return out

    if master:
        os.makedirs(c['out_dir'], exist_ok=True)
        log = open(os.path.join(c['out_dir'], 'log.jsonl'), 'a' if c['init_from'] == 'resume' else 'w')
        header = run_header(c, device, dtype)
        header.update(params=raw_model.get_num_params(), params_total=raw_model.get_num_params(False),
                      tokens_per_iter=tokens_per_iter, world_size=world, resumed_at=iter_num if c['init_from'] == 'resume' else None)
        log.write(json.dumps(header) + '\n')
        log.flush()
        print(f"{c['dataset']}: {n_train:,} train / {n_val:,} val tokens, vocab {meta['vocab_size']} | "
              f"{raw_model.get_num_params():,} params, wavelet={c['wavelet']} | {device} {dtype} x{world} | "
              f"{tokens_per_iter:,} tokens/iter")

    def checkpoint():
        save_checkpoint(ckpt_path, {
            'model': raw_model.state_dict(), 'optimizer': optimizer.state_dict(), 'scaler': scaler.state_dict(),
            'model_args': asdict(raw_model.config), 'config': c, 'meta': meta, 'iter_num': iter_num,
            'best_val_loss': best_val, 'rng': torch.get_rng_state()})

    from tqdm import tqdm
    bar = tqdm(total=c['max_iters'], initial=iter_num, disable=not master, dynamic_ncols=True, mininterval=1.0)
    records, step_time, steps_timed = [], 0.0, 0
    start_iter, t_start = iter_num, time.time()
    with stop_on_signal() as stop:
        while True:
            if (iter_num % c['eval_interval'] == 0 or iter_num >= c['max_iters'] or c['eval_only']) and \
                    not (iter_num == start_iter and c['init_from'] == 'resume' and not c['eval_only']):
                losses = evaluate()
                if not all(math.isfinite(v) for v in losses.values()):
                    raise FloatingPointError(f"loss is {losses} at iter {iter_num}")
                best_val = min(best_val, losses['val'])
                rec = {'iter': iter_num, 'train_loss': losses['train'], 'val_loss': losses['val'],
                       'lr': get_lr(max(iter_num - 1, 0), c), 'tokens': iter_num * tokens_per_iter,
                       'time': round(time.time() - t_start, 3),
                       'step_ms': round(1000 * step_time / steps_timed, 2) if steps_timed else None}
                records.append(rec)
                step_time, steps_timed = 0.0, 0
                if master:
                    bar.write(f"iter {iter_num}: train {losses['train']:.4f}, val {losses['val']:.4f} "
                              f"({losses['val'] / math.log(2):.4f} bits/token)")
                    log.write(json.dumps(rec) + '\n')
                    log.flush()
                    if not c['eval_only'] and iter_num > start_iter:
                        checkpoint()
            if iter_num >= c['max_iters'] or c['eval_only']:
                break
            if stop_requested(stop, ddp, device):
                if master:
                    checkpoint()
                raise KeyboardInterrupt(f"{stop['signal']}: saved {ckpt_path} at iter {iter_num}; "
                                        f"continue with --init_from=resume")

            # one optimisation step over the global batch; this rank takes its slice
            t0 = time.time()
            lr = get_lr(iter_num, c)
            for group in optimizer.param_groups:
                group['lr'] = lr
            train_data = open_split(data_dir, meta, 'train')
            offsets = batch_offsets(c['seed'], 0 if c['overfit_single_batch'] else iter_num, n_train, T, global_batch)
            loss_sum = 0.0
            for micro in range(accum):
                start = (micro * world + rank) * bs
                x, y = get_batch(train_data, offsets[start:start + bs], T, device)
                if ddp:  # all-reduce gradients on the last micro-step only
                    model.require_backward_grad_sync = micro == accum - 1
                with autocast:
                    _, loss = model(x, y)
                scaler.scale(loss / accum).backward()
                loss_sum += loss.item() / accum
            if not math.isfinite(loss_sum):
                raise FloatingPointError(f"loss is {loss_sum} at iter {iter_num}")
            if c['grad_clip']:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), c['grad_clip'])
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if device.type == 'cuda':
                torch.cuda.synchronize()
            step_time += time.time() - t0
            steps_timed += 1
            iter_num += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.4f}", lr=f"{lr:.2e}", refresh=False)
    bar.close()
    if master:
        log.close()
        if c['sample_tokens'] and meta.get('modality') == 'text':
            from sample import decode_text
            prompt = torch.zeros((1, 1), dtype=torch.long, device=device)
            g = torch.Generator(device=device).manual_seed(c['seed'])
            out = raw_model.eval().generate(prompt, c['sample_tokens'], temperature=0.8, top_k=None, generator=g)
            print('sample: ' + decode_text(out[0, 1:].tolist(), meta))
        if records:
            r = records[-1]
            print(f"final val loss {r['val_loss']:.4f} ({r['val_loss'] / math.log(2):.4f} bits/token) at iter {r['iter']}")
    if ddp:
        dist.destroy_process_group()
    return records


def main(argv):
    try:
        train(parse_config(argv))
    except (ConfigError, DatasetError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt as e:
        print(f"\n{e or 'interrupted'}", file=sys.stderr)
        sys.exit(130)
    except FloatingPointError as e:
        sys.exit(f"error: {e}: the run diverged; lower learning_rate or use dtype=bfloat16 "
                 f"(the last good checkpoint, if any, is intact)")


if __name__ == '__main__':
    main(sys.argv[1:])

"""
Train a GPT, with or without the wavelet operation, on one CPU / GPU / Apple GPU or many GPUs.

    python train.py config/quickstart.py                    # 2 CPU cores, a few minutes, offline
    python train.py config/text8_wavelet.py --max_iters=2000
    torchrun --standalone --nproc_per_node=8 train.py config/text8_wavelet.py

The settings and their defaults: TrainConfig in settings.py and SystemConfig in system.py, the model's in
model.GPTConfig (python train.py --help lists them all). A config file (plain assignments)
overrides them, and --key=value overrides both; unknown keys, wrong types and values out of range
are one-line errors. The resolved config goes into the checkpoint and the first line of
out_dir/log.jsonl.

Data: data/<dataset>/{train,val}.bin and meta.json, written by prepare/*.py. Batch i is drawn by a
generator seeded with (seed, i), so a resumed run sees exactly the data an uninterrupted run would,
and under DDP each rank takes its slice of the same global batch.
"""
import json
import math
import os
import platform
import signal
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
import torch
from torch.nn import functional as F

from checkpoints import claim_out_dir, load_checkpoint, load_model_state, load_pretrained, save_checkpoint
from dataset import bytes_covered, load_dataset, open_split, tokenizer_for, tokens_differ
from errors import ConfigError, Interrupted, main_guard, reason
from metrics import bits_per_byte, pmf_smoothness
from settings import TRAIN, keep_checkpoint_model, parse_config, resolve_model, start_from_checkpoint
from system import autocast_context, build_model, check_batch_memory, pick_device, pick_dtype
from generate import generate
from linear_attention import decay_rates

# ----------------------------------------------------------------------------------------------
# data (read with dataset.load_dataset)

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


def stop_requested(stop, ddp, device):
    """Under DDP every rank must leave the loop at the same step, so ranks agree on the flag."""
    if not ddp:
        return stop['signal'] is not None
    import torch.distributed as dist
    flag = torch.tensor([stop['signal'] is not None], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    stop['signal'] = stop['signal'] or ('SIGTERM' if flag.item() else None)
    return bool(flag.item())


TRAINING_STATE = {'optimizer', 'scaler', 'rng', 'iter_num', 'best_val_loss', 'config'}  # what resume needs


def restore_training_state(ckpt, path, optimizer, scaler):
    """The optimiser, gradient scaler and random state of a checkpoint (its weights are loaded already).
    Returns (iter_num, best_val_loss). A state that does not fit is a one-line error."""
    try:
        optimizer.load_state_dict(ckpt['optimizer'])
        scaler.load_state_dict(ckpt['scaler'])
        torch.set_rng_state(ckpt['rng'])  # dropout continues as it would have
        iter_num, best_val = ckpt['iter_num'], float(ckpt['best_val_loss'])
        if type(iter_num) is not int or iter_num < 0:
            raise ValueError(f"iter_num={iter_num!r}")
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{path} holds a damaged training state ({reason(e, 80)}); it cannot be resumed: "
                          f"train from scratch in another out_dir")
    return iter_num, best_val


def run_header(config, device, dtype):
    return {'config': config, 'argv': sys.argv, 'python': platform.python_version(),
            'torch': torch.__version__, 'numpy': np.__version__, 'device': str(device), 'dtype': dtype,
            'hardware': torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine(),
            'threads': torch.get_num_threads(), 'started': time.strftime('%Y-%m-%d %H:%M:%S')}


def train(config, given=()):
    """Train as config says (given: the keys a config file or the command line set). Returns the
    list of eval records written to log.jsonl. However it ends, out_dir is released and a DDP process
    group is torn down."""
    with ExitStack() as on_exit:
        return run_training(config, given, on_exit)


def diverged(what, dtype):
    """The error for a loss that is no longer finite, with the advice that fits this dtype."""
    return ConfigError(f"{what}: the run diverged; lower learning_rate (or set grad_clip)" +
                       (", or use dtype='bfloat16' if this GPU has it" if dtype == 'float16' else "") +
                       " (the last good checkpoint, if any, is intact)")


def run_training(config, given, on_exit):
    """train()'s work. What must be undone however it ends goes onto on_exit, an ExitStack."""
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
        on_exit.callback(dist.destroy_process_group)
    else:
        rank, world = 0, 1
        device = pick_device(c['device'], None)
    master = rank == 0
    dtype = pick_dtype(c['dtype'], device)

    if master:  # first: it may build the dataset, or put back one that an interrupted rebuild set aside
        data_dir, meta = load_dataset(c['dataset'])
    if ddp:
        dist.barrier()
        if not master:
            data_dir, meta = load_dataset(c['dataset'], master)
    ckpt_path = os.path.join(c['out_dir'], 'ckpt.pt')
    ckpt = None
    if c['init_from'] == 'resume':
        if not os.path.exists(ckpt_path):
            raise ConfigError(f"init_from='resume' but {ckpt_path} does not exist; train from scratch first")
        ckpt = load_checkpoint(ckpt_path)
        if not TRAINING_STATE <= set(ckpt):
            raise ConfigError(f"{ckpt_path} holds weights only, not a training state to resume; "
                              f"train from scratch in another out_dir")
        trained_on = ckpt['config'].get('dataset') if isinstance(ckpt['config'], dict) else None
        if not isinstance(trained_on, str):
            raise ConfigError(f"{ckpt_path} holds a damaged training state (its config names no dataset); "
                              f"train from scratch in another out_dir")
        if trained_on != c['dataset']:
            raise ConfigError(f"{ckpt_path} was trained on {trained_on!r}, not {c['dataset']!r}")
        if ckpt['model_args']['vocab_size'] != meta['vocab_size']:
            raise ConfigError(f"{ckpt_path} has a vocabulary of {ckpt['model_args']['vocab_size']} tokens, but "
                              f"data/{c['dataset']} now has {meta['vocab_size']}: the dataset was rebuilt "
                              f"differently; rebuild it as before, or train from scratch in a new out_dir")
        keep_checkpoint_model(c, given, ckpt['model_args'], ckpt_path)
    source = None  # init_from=<another run's ckpt.pt>: its weights, then a fresh start
    if c['init_from'] not in ('scratch', 'resume'):
        source = load_checkpoint(c['init_from'])
        if source['model_args']['vocab_size'] != meta['vocab_size']:
            raise ConfigError(f"{c['init_from']} has a vocabulary of {source['model_args']['vocab_size']} tokens, "
                              f"data/{c['dataset']} has {meta['vocab_size']}; start from a model of this dataset")
        other = tokens_differ(source['meta'], meta)
        if other:
            raise ConfigError(f"{c['init_from']} was trained on other tokens than data/{c['dataset']} holds ({other}, "
                              f"of one vocabulary size); start from a model of this dataset's tokens")
        start_from_checkpoint(c, given, source['model_args'])
    tok = tokenizer_for(meta)
    bins = tok.ordered  # ordered bins of one quantity (audio levels), or None
    gpt_config = resolve_model(c, given, meta, bins)  # the settings that depend on the dataset, checked
    n_train = len(open_split(data_dir, meta, 'train'))
    n_val = len(open_split(data_dir, meta, 'val'))
    check_batch_memory(c, world, device)
    torch.manual_seed(c['seed'])  # the same initial weights on every rank and for every variant
    model = build_model(gpt_config)  # before out_dir is claimed: a model that cannot be built leaves nothing behind
    if ckpt is not None:
        load_model_state(model, ckpt['model'], ckpt_path)
    if source is not None:
        source = {'path': c['init_from'], 'iter_num': source.get('iter_num'),
                  'new_tensors': load_pretrained(model, source['model'], c['init_from'])}
    elif ckpt is not None:
        source = ckpt.get('source')  # a converted run, resumed: still say where it came from
    if master:  # before anything is written to out_dir: it is ours, writable, and holds no work we would lose
        on_exit.enter_context(claim_out_dir(c['out_dir']))
        if c['init_from'] != 'resume' and os.path.exists(ckpt_path) and not c['overwrite']:
            raise ConfigError(f"{ckpt_path} holds a run already; go on with it with --init_from=resume, replace it "
                              f"with --overwrite=True, or use another out_dir")
    model.to(device)
    raw_model = model  # what gets saved: never the compiled or DDP wrapper (no '_orig_mod.' keys)
    optimizer = model.configure_optimizers(c['weight_decay'], c['learning_rate'], (c['beta1'], c['beta2']), device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == 'float16')
    iter_num, best_val = 0, float('inf')
    if ckpt is not None:
        iter_num, best_val = restore_training_state(ckpt, ckpt_path, optimizer, scaler)
        del ckpt
        if iter_num >= c['max_iters'] and not c['eval_only']:
            raise ConfigError(f"{ckpt_path} is at iter {iter_num} already, and max_iters={c['max_iters']}: nothing to "
                              f"train; raise max_iters to go on (--eval_only=True evaluates it)")
    if c['compile']:
        model = torch.compile(model)
    if ddp:
        model = DDP(model, device_ids=[device.index] if device.type == 'cuda' else None)
    autocast = autocast_context(device, dtype)

    bs, T, accum = c['batch_size'], c['block_size'], c['gradient_accumulation_steps']
    global_batch = bs * world * accum
    tokens_per_iter = global_batch * T
    n_eval = c['eval_iters'] * bs * world  # the same windows whatever the split into processes
    val_bytes = bytes_covered(data_dir, meta, 'val', eval_offsets(n_val, T, n_eval), T)  # None: no byte counts

    @torch.no_grad()
    def evaluate():
        """Mean NLL over fixed windows of each split (under DDP each rank takes every world-th window), the
        Fourier head's regulariser (the rest of the training objective), and for ordered bins the
        smoothness of the PMFs predicted at fixed positions of the first validation batch."""
        model.eval()
        out = {}
        for split, n in (('train', n_train), ('val', n_val)):
            data = open_split(data_dir, meta, split)
            offsets = eval_offsets(n, T, n_eval)[rank::world]
            total = torch.zeros(3, device=device, dtype=torch.float64)  # NLL, regulariser, windows
            for i in range(0, len(offsets), bs):
                x, y = get_batch(data, offsets[i:i + bs], T, device)
                with autocast:
                    logits, _ = model(x, y)
                nll = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), y.view(-1))
                reg = raw_model.lm_head.last_regulariser.item() if c['head'] == 'fourier' else 0.0
                total += torch.tensor([nll.item() * len(x), reg * len(x), len(x)], device=device, dtype=torch.float64)
                if split == 'val' and i == 0 and bins is not None:
                    probs = F.softmax(logits.float(), -1)[..., bins.start:bins.stop].flatten(0, 1)
                    rows = torch.linspace(0, len(probs) - 1, min(128, len(probs))).long()
                    out['smoothness'] = pmf_smoothness((probs[rows] / probs[rows].sum(-1, keepdim=True)).cpu())
            if ddp:
                dist.all_reduce(total)
            out[split], out[split + '_regulariser'] = (total[0] / total[2]).item(), (total[1] / total[2]).item()
        model.train()
        return out

    if master:
        os.makedirs(c['out_dir'], exist_ok=True)
        log_mode = 'a' if c['init_from'] == 'resume' else 'w'
        log = on_exit.enter_context(open(os.path.join(c['out_dir'], 'log.jsonl'), log_mode))
        header = run_header(c, device, dtype)
        header.update(params=raw_model.get_num_params(), params_total=raw_model.get_num_params(False),
                      tokens_per_iter=tokens_per_iter, world_size=world, resumed_at=iter_num if c['init_from'] == 'resume' else None,
                      started_from=source)
        if c['attention'] == 'linear':
            header.update(decays=[round(g, 6) for g in decay_rates(c['n_head']).tolist()])
        log.write(json.dumps(header) + '\n')
        log.flush()
        print(f"{c['dataset']}: {n_train:,} train / {n_val:,} val tokens, vocab {meta['vocab_size']} | "
              f"{raw_model.get_num_params():,} params, wavelet={c['wavelet']} | {device} {dtype} x{world} | "
              f"{tokens_per_iter:,} tokens/iter")

    def checkpoint():
        save_checkpoint(ckpt_path, {
            'model': raw_model.state_dict(), 'optimizer': optimizer.state_dict(), 'scaler': scaler.state_dict(),
            'model_args': asdict(raw_model.config), 'config': c, 'meta': meta, 'iter_num': iter_num,
            'best_val_loss': best_val, 'rng': torch.get_rng_state(), 'source': source})

    from tqdm import tqdm
    bar = on_exit.enter_context(tqdm(total=c['max_iters'], initial=iter_num, disable=not master, dynamic_ncols=True,
                                     mininterval=1.0))  # closed however the run ends: an error message stays last
    records, step_time, steps_timed = [], 0.0, 0
    start_iter, t_start = iter_num, time.time()
    with stop_on_signal() as stop:
        while True:
            if (iter_num % c['eval_interval'] == 0 or iter_num >= c['max_iters'] or c['eval_only']) and \
                    not (iter_num == start_iter and c['init_from'] == 'resume' and not c['eval_only']):
                losses = evaluate()
                if not all(math.isfinite(v) for v in losses.values()):
                    raise diverged(f"loss is {losses} at iter {iter_num}", dtype)
                best_val = min(best_val, losses['val'])
                rec = {'iter': iter_num, 'train_loss': losses['train'], 'val_loss': losses['val'],
                       **({'val_regulariser': losses['val_regulariser']} if c['head'] == 'fourier' else {}),
                       **({'val_smoothness': losses['smoothness']} if losses.get('smoothness') is not None else {}),
                       'lr': get_lr(max(iter_num - 1, 0), c), 'tokens': iter_num * tokens_per_iter,
                       'time': round(time.time() - t_start, 3),
                       'step_ms': round(1000 * step_time / steps_timed, 2) if steps_timed else None}
                bpb = bits_per_byte(losses['val'], n_eval * T, val_bytes) if val_bytes else None
                if bpb is not None:  # datasets that store the byte counts of their tokens
                    rec['val_bpb'] = bpb
                records.append(rec)
                step_time, steps_timed = 0.0, 0
                if master:
                    bar.write(f"iter {iter_num}: train {losses['train']:.4f}, val {losses['val']:.4f} "
                              f"({losses['val'] / math.log(2):.4f} bits/token" +
                              (f", {bpb:.4f} bits/byte)" if bpb is not None else ")"))
                    log.write(json.dumps(rec) + '\n')
                    log.flush()
                    if not c['eval_only'] and iter_num > start_iter:
                        checkpoint()
            if iter_num >= c['max_iters'] or c['eval_only']:
                break
            if stop_requested(stop, ddp, device):
                if master:
                    checkpoint()
                if ddp:  # every rank stops at this step: they leave together once rank 0 has saved
                    dist.barrier()
                raise Interrupted(f"{stop['signal']}: saved {ckpt_path} at iter {iter_num}; "
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
                raise diverged(f"loss is {loss_sum} at iter {iter_num}", dtype)
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
        if c['sample_tokens'] and tok.text:
            prompt = torch.tensor([tok.start()], dtype=torch.long, device=device)
            g = torch.Generator(device=device).manual_seed(c['seed'])
            out = generate(raw_model.eval(), prompt, c['sample_tokens'], temperature=0.8, generator=g)
            print('sample: ' + tok.decode(out[0, prompt.size(1):].tolist()))
        if records:
            r = records[-1]
            print(f"final val loss {r['val_loss']:.4f} ({r['val_loss'] / math.log(2):.4f} bits/token" +
                  (f", {r['val_bpb']:.4f} bits/byte" if 'val_bpb' in r else "") + f") at iter {r['iter']}")
    if ddp:  # no rank tears the group down (on_exit) while another is still at work, e.g. rank 0 saving
        dist.barrier()
    return records


def main(argv):
    config, given = parse_config(argv, TRAIN, __doc__)
    train(config, given)


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

"""
Time one training iteration (forward, backward, AdamW step) of each wavelet variant, interleaved
so that every variant sees the same machine load, and print a table.

    python bench.py                              # the paper's model, batch 8, on this machine
    python bench.py --device=cuda --batch_size=64 --compile=True
    python bench.py --variants=none,haar --n_layer=4 --block_size=256

Random tokens: the speed of a step does not depend on the data.
"""
import sys
import time
from contextlib import nullcontext

import torch

from model import GPT
from train import DEFAULTS as TRAIN_DEFAULTS, ConfigError, model_config, parse_config, pick_device, pick_dtype

DEFAULTS = {k: TRAIN_DEFAULTS[k] for k in ('n_layer', 'n_head', 'n_embd', 'block_size', 'dropout', 'bias',
                                           'wavelet_frac', 'wavelet_levels', 'wavelet_pad', 'wavelet_max_kernel',
                                           'device', 'dtype', 'compile', 'seed')}
DEFAULTS.update(variants='none,haar,learnable', batch_size=8, vocab_size=27, steps=5, rounds=5, warmup=2,
                threads=0)  # threads 0: torch's default


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()
    elif device.type == 'mps':
        torch.mps.synchronize()


def bench(c):
    if c['threads']:
        torch.set_num_threads(c['threads'])
    device = pick_device(c['device'], None)
    dtype = pick_dtype(c['dtype'], device)
    autocast = nullcontext() if dtype == 'float32' else torch.autocast(device.type, dtype=getattr(torch, dtype))
    runs = {}
    for name in c['variants'].split(','):
        torch.manual_seed(c['seed'])
        try:
            model = GPT(model_config(dict(c, wavelet=name), c['vocab_size'])).to(device)
        except ValueError as e:
            raise ConfigError(str(e))
        opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), device.type)
        step_model = torch.compile(model) if c['compile'] else model
        x = torch.randint(0, c['vocab_size'], (c['batch_size'], c['block_size']), device=device)
        runs[name] = dict(model=model, step_model=step_model, opt=opt, x=x, times=[])

    def step(r):
        with autocast:
            _, loss = r['step_model'](r['x'], r['x'])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(r['model'].parameters(), 1.0)
        r['opt'].step()
        r['opt'].zero_grad(set_to_none=True)

    for r in runs.values():  # warm up (and compile) every variant before timing any
        for _ in range(c['warmup']):
            step(r)
    for _ in range(c['rounds']):  # interleaved: variant A, B, C, A, B, C, ...
        for r in runs.values():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(c['steps']):
                step(r)
            sync(device)
            r['times'].append((time.perf_counter() - t0) / c['steps'])

    base = None
    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, batch {c['batch_size']} x "
          f"{c['block_size']}, {c['n_layer']} layers x {c['n_embd']}, compile={c['compile']}, "
          f"median of {c['rounds']} rounds of {c['steps']} steps")
    print(f"| variant | params | ms / iter | vs {next(iter(runs))} |")
    print("|---|---|---|---|")
    results = {}
    for name, r in runs.items():
        ms = 1000 * sorted(r['times'])[len(r['times']) // 2]
        base = base or ms
        results[name] = ms
        print(f"| {name} | {r['model'].get_num_params():,} | {ms:.1f} | {ms / base:.3f} |")
    return results


if __name__ == '__main__':
    try:
        bench(parse_config(sys.argv[1:], DEFAULTS))
    except ConfigError as e:
        sys.exit(f"error: {e}")

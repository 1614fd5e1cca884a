"""
Time one training iteration (forward, backward, AdamW step) of each wavelet variant, interleaved
so that every variant sees the same machine load, and print a table. With --mode=generate, time
generation instead: cached against recomputed, and one second of 16 kHz audio.

    python bench.py                              # the paper's model, batch 8, on this machine
    python bench.py --device=cuda --batch_size=64 --compile=True
    python bench.py --variants=none,haar --n_layer=4 --block_size=256
    python bench.py --mode=generate --vocab_size=256 --threads=1

Random tokens and weights: the speed of a step does not depend on them.
"""
import os
import sys
import time

import torch

from model import GPT, Cache, decoding, sample_next
from train import (DEFAULTS as TRAIN_DEFAULTS, ConfigError, autocast_context, model_config, parse_config,
                   pick_device, pick_dtype)

DEFAULTS = {k: TRAIN_DEFAULTS[k] for k in ('n_layer', 'n_head', 'n_embd', 'block_size', 'dropout', 'bias',
                                           'wavelet_frac', 'wavelet_levels', 'wavelet_pad', 'wavelet_max_kernel',
                                           'device', 'dtype', 'compile', 'seed')}
DEFAULTS.update(variants='none,haar,learnable', batch_size=8, vocab_size=27, steps=5, rounds=5, warmup=2,
                threads=0,  # threads 0: torch's default
                mode='train',  # 'train': one training iteration | 'generate': tokens per second when sampling
                num_samples=1, gen_tokens=16_000)  # generate: sequences side by side, and the length of the whole run


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()
    elif device.type == 'mps':
        torch.mps.synchronize()


def setup(c):
    """Threads, device, dtype and the autocast context, as the config says."""
    if c['threads']:
        torch.set_num_threads(c['threads'])
    device = pick_device(c['device'], None)
    dtype = pick_dtype(c['dtype'], device)
    return device, dtype, autocast_context(device, dtype)


def build(c, wavelet, device):
    """The benchmarked model of one variant: the same seed, so the same weights, for every variant."""
    torch.manual_seed(c['seed'])
    try:
        return GPT(model_config(dict(c, wavelet=wavelet), c['vocab_size'])).to(device)
    except ValueError as e:
        raise ConfigError(str(e))


def bench(c):
    device, dtype, autocast = setup(c)
    runs = {}
    for name in c['variants'].split(','):
        model = build(c, name, device)
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


def bench_generate(c):
    """
    Tokens per second with the context full (block_size tokens, the slowest case for both paths):
    the cached step (one token through the Cache) against re-running the whole context, each followed
    by sampling, interleaved across variants. Then the wall time of model.generate() for gen_tokens
    from a one-token prompt with the cache: the context re-encodings at the block_size boundary included.
    """
    load = os.getloadavg()[0]  # before we add to it: the CPU may be shared with other jobs
    device, dtype, autocast = setup(c)
    T, B = c['block_size'], c['num_samples']
    runs = {}
    for name in c['variants'].split(','):
        model = build(c, name, device).eval()
        x = torch.randint(0, c['vocab_size'], (B, T), device=device)
        cache = Cache(c['n_layer'])
        with autocast, decoding(device):
            model(x[:, :-1], cache=cache)  # positions 0 .. T-2; each timed step writes position T-1
        runs[name] = dict(model=model, x=x, cache=cache, cached=[], recomputed=[])

    def cached_step(r):
        r['cache'].pos = T - 1
        sample_next(r['model'].step(r['x'][:, -1], r['cache']), 1.0)

    def recomputed_step(r):
        logits, _ = r['model'](r['x'])
        sample_next(logits[:, -1], 1.0)

    def timed(step, r, n):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            step(r)
        sync(device)
        return (time.perf_counter() - t0) / n

    with autocast, decoding(device):  # as in generate()
        for r in runs.values():
            for _ in range(c['warmup']):
                cached_step(r)
                recomputed_step(r)
        for _ in range(c['rounds']):  # interleaved, as in training
            for r in runs.values():
                r['cached'].append(timed(cached_step, r, 10 * c['steps']))
                r['recomputed'].append(timed(recomputed_step, r, c['steps']))
        for r in runs.values():
            prompt = r['x'][:, :1]
            sync(device)
            t0 = time.perf_counter()
            r['model'].generate(prompt, c['gen_tokens'], generator=torch.Generator(device).manual_seed(c['seed']))
            sync(device)
            r['whole'] = time.perf_counter() - t0

    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, load average {load:.2f} before, "
          f"{B} sequence(s), {c['n_layer']} layers x {c['n_embd']}, block_size {T}, vocab {c['vocab_size']}, "
          f"median of {c['rounds']} rounds")
    print(f"| variant | cached tokens/s at context {T} | recomputed tokens/s | speedup | "
          f"{c['gen_tokens']:,} tokens, cached (s) |")
    print("|---|---|---|---|---|")
    median = lambda t: sorted(t)[len(t) // 2]
    results = {}
    for name, r in runs.items():
        cached, recomputed = B / median(r['cached']), B / median(r['recomputed'])
        results[name] = dict(cached=cached, recomputed=recomputed, whole=r['whole'])
        print(f"| {name} | {cached:,.0f} | {recomputed:,.1f} | {cached / recomputed:.1f}x | {r['whole']:.1f} |")
    return results


if __name__ == '__main__':
    try:
        c = parse_config(sys.argv[1:], DEFAULTS)
        if c['mode'] not in ('train', 'generate'):
            raise ConfigError(f"mode={c['mode']!r}: use 'train' or 'generate'")
        bench_generate(c) if c['mode'] == 'generate' else bench(c)
    except ConfigError as e:
        sys.exit(f"error: {e}")

"""
Time one training iteration (forward, backward, AdamW step) of each model variant, interleaved
so that every variant sees the same machine load, and print a table. Variants are written as in
compare.py ('haar', 'haar+wavelet_frac=0.25', ...); every model setting is accepted. With --mode=generate, time
generation instead: cached against recomputed, and one second of 16 kHz audio. With --mode=positions,
the time per generated token against its position, up to 8 x block_size.

    python bench.py                              # the paper's model, batch 8, on this machine
    python bench.py --device=cuda --batch_size=64 --compile=True
    python bench.py --variants=none,haar --n_layer=4 --block_size=256
    python bench.py --mode=generate --vocab_size=256 --threads=1
    python bench.py --mode=positions --variants=position=rope,attention=linear+position=rope --vocab_size=256 --threads=1

Random tokens and weights: the speed of a step does not depend on them.
"""
import os
import sys
import time
from dataclasses import dataclass

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import torch

from common import (SystemConfig, autocast_context, model_config, parse_config, parse_variant, pick_device,
                    pick_dtype)
from errors import main_guard
from generate import decoding, generate, sample_next
from model import GPT, GPTConfig, at_least, one_of
from outputs import check_figure, save_figure


@dataclass
class BenchConfig:
    mode: str = 'train'           # 'train': one training iteration | 'generate': tokens per second when sampling
                                  # | 'positions': time per token against position
    variants: str = 'none,haar,learnable'  # model variants as in compare.py: 'haar', 'haar+wavelet_frac=0.25', ...
    batch_size: int = 8
    vocab_size: int = 27
    steps: int = 5                # timed steps per round
    rounds: int = 5               # rounds, each variant in turn; the median round counts
    warmup: int = 2
    threads: int = 0              # 0: torch's default
    compile: bool = False         # torch.compile the model (train mode)
    num_samples: int = 1          # generate: sequences side by side
    gen_tokens: int = 16_000      # generate: the length of the whole run
    plot: str = ''                # positions: also draw the curves into this .png (needs matplotlib)
    overwrite: bool = False       # --plot may replace a file that exists

    def __post_init__(self):
        one_of(self, 'mode', 'train', 'generate', 'positions')
        at_least(self, 1, 'batch_size', 'vocab_size', 'steps', 'rounds', 'num_samples', 'gen_tokens')
        at_least(self, 0, 'warmup', 'threads')


BENCH = (BenchConfig, SystemConfig, GPTConfig)


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


def variants(c):
    """{name: overrides} of --variants, each checked before anything runs."""
    return {v: parse_variant(v, c, BENCH) for v in c['variants'].split(',')}


def build(c, overrides, device):
    """The benchmarked model of one variant: the same seed, so the same weights, for every variant."""
    torch.manual_seed(c['seed'])
    return GPT(model_config(dict(c, **overrides), c['vocab_size'])).to(device)


def bench(c):
    device, dtype, autocast = setup(c)
    runs = {}
    for name, overrides in variants(c).items():
        model = build(c, overrides, device)
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
    for name, overrides in variants(c).items():
        model = build(c, overrides, device).eval()
        x = torch.randint(0, c['vocab_size'], (B, T), device=device)
        cache = model.new_cache()
        with autocast, decoding(device):
            model(x[:, :-1], cache=cache)  # positions 0 .. T-2; each timed step writes position T-1
        runs[name] = dict(model=model, x=x, cache=cache, cached=[], recomputed=[])

    def cached_step(r):
        r['cache'].pos = T - 1
        logits, _ = r['model'](r['x'][:, -1:], cache=r['cache'])
        sample_next(logits[:, -1], 1.0)

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
            generate(r['model'], prompt, c['gen_tokens'], generator=torch.Generator(device).manual_seed(c['seed']))
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


def bench_positions(c):
    """
    Time per generated token against its position, from a one-token prompt to 8 x block_size, with the
    cache, each variant in turn for `rounds` rounds (the median per position band counts). A softmax
    model (or learned positions) slides its context and encodes it again at every block_size boundary;
    linear attention with rotary positions carries a fixed-size state and never re-encodes.
    """
    device, dtype, autocast = setup(c)
    T, n = c['block_size'], 8 * c['block_size']
    band = T // 2  # positions per row of the table
    runs = {name: dict(model=build(c, overrides, device).eval(), bands=[]) for name, overrides in variants(c).items()}
    with autocast:
        for _ in range(c['rounds']):
            for r in runs.values():
                times = [time.perf_counter()]
                sync(device)
                generate(r['model'], torch.zeros(c['num_samples'], 1, dtype=torch.long, device=device), n - 1,
                         generator=torch.Generator(device).manual_seed(c['seed']),
                         on_token=lambda _: (sync(device), times.append(time.perf_counter())))
                per_token = [b - a for a, b in zip(times, times[1:])]  # token at position i + 1
                r['bands'].append([sum(per_token[i:i + band]) / len(per_token[i:i + band]) for i in range(0, n - 1, band)])
    median = lambda xs: sorted(xs)[len(xs) // 2]
    rows = {name: [1000 * median(col) for col in zip(*r['bands'])] for name, r in runs.items()}
    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, {c['num_samples']} sequence(s), "
          f"{c['n_layer']} layers x {c['n_embd']}, block_size {T}, vocab {c['vocab_size']}, median of {c['rounds']} rounds")
    print("| positions | " + " | ".join(f"{name}: ms/token" for name in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for i, start in enumerate(range(0, n - 1, band)):
        print(f"| {start + 1}-{min(start + band, n - 1)} | " + " | ".join(f"{ms[i]:.2f}" for ms in rows.values()) + " |")
    if c['plot']:
        draw_positions(rows, band, n, c['plot'])
    return rows


def draw_positions(rows, band, n, path):
    try:
        import matplotlib
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
        return
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, ms in rows.items():
        ax.plot([min(start + band, n - 1) for start in range(0, n - 1, band)], ms, marker='o', label=name)
    ax.set_xlabel('position of the generated token')
    ax.set_ylabel('ms per token (mean over the band)')
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    print(f"wrote {save_figure(fig, path)}")


def main(argv):
    c, _ = parse_config(argv, BENCH, __doc__)
    if c['plot']:
        check_figure(c['plot'], c['overwrite'], '--plot')  # now, not after the timing
    {'train': bench, 'generate': bench_generate, 'positions': bench_positions}[c['mode']](c)


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

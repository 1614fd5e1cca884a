"""
Time one training iteration (forward, backward, AdamW step) of each model variant, interleaved
so that every variant sees the same machine load, and print a table. Variants are written as in
compare.py ('haar', 'haar+wavelet_frac=0.25', ...); every model setting is accepted. With --mode=generate, time
generation instead: the decoding step against recomputing the context, and one second of 16 kHz
audio. With --mode=positions, the time per generated token against its position, up to 8 x
block_size. With --mode=wavelet, the wavelet operation alone (forward and backward) in each of its
forms. With --mode=coder, Equal-Info's coder: compression and decompression of a text through an M1
checkpoint, in one process and in --workers processes. With --mode=ops, no timing: what a GPU is asked to
run, counted on any machine (the backend calls of a training step, the launches of a compiled one, the host
syncs, the calls of a decoding step; docs/speed.md). Every variant is warmed up before anything is timed.

    python bench.py                              # the paper's model, batch 8, on this machine
    python bench.py --device=cuda --batch_size=64 --compile=True
    python bench.py --variants=none,haar --n_layer=4 --block_size=256
    python bench.py --mode=generate --vocab_size=256 --threads=1
    python bench.py --mode=generate --vocab_size=256 --device=cuda --num_samples=16
    python bench.py --mode=positions --variants=position=rope,attention=linear+position=rope --vocab_size=256 --threads=1
    python bench.py --mode=wavelet --device=cuda --batch_size=64
    python bench.py --mode=coder --m1=out/m1_pydocs/ckpt.pt --text_bytes=1000000 --rounds=3 --warmup=0
    python bench.py --mode=ops                   # the counts test_ops.py holds, about a minute

Random tokens and weights: the speed of a step does not depend on them.
"""
import collections
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from settings import model_config, parse_config, parse_variant
from system import SystemConfig, autocast_context, pick_device, pick_dtype, use_threads
from errors import ConfigError, main_guard
from generate import cast_once, decoding, decoding_step, generate, sample_next, sampling_step
from checks import at_least, one_of
from model import (GPT, GPTConfig, MovingAverage, ToeplitzConvolution, Wavelet, causal_convolution,
                   causal_moving_average, toeplitz_convolution, toeplitz_index, wavelet_windows)
from outputs import check_figure, save_figure


@dataclass
class BenchConfig:
    mode: str = 'train'           # 'train': one training iteration | 'generate': tokens per second when sampling
                                  # | 'positions': time per token against position | 'wavelet': the operation's forms
                                  # | 'coder': Equal-Info's compression and decompression speed
                                  # | 'ops': what a GPU runs, counted (calls, launches, host syncs), no timing
    variants: str = 'none,haar,learnable'  # model variants as in compare.py: 'haar', 'haar+wavelet_frac=0.25', ...
    batch_size: int = 8
    vocab_size: int = 27
    steps: int = 5                # timed steps per round
    rounds: int = 5               # rounds, each variant in turn; the median round counts
    warmup: int = 2
    compile: bool = False         # torch.compile the model (train), or the decoding step (generate)
    graph: bool = True            # generate: replay the decoding step as a CUDA graph (on CUDA only)
    num_samples: int = 1          # generate: sequences side by side
    gen_tokens: int = 16_000      # generate: the length of the whole run
    plot: str = ''                # positions: also draw the curves into this .png (needs matplotlib)
    overwrite: bool = False       # --plot may replace a file that exists
    m1: str = ''                  # coder: M1's checkpoint (config/equal_info_m1.py)
    input: str = 'pydocs'         # coder: the text (a file, a folder of .txt, a zip, or pydocs): its train split's start
    text_bytes: int = 1_000_000   # coder: how much of it
    workers: int = 0              # coder: processes beside the one-process runs (0: one per core)

    def __post_init__(self):
        one_of(self, 'mode', 'train', 'generate', 'positions', 'wavelet', 'coder', 'ops')
        at_least(self, 1, 'batch_size', 'vocab_size', 'steps', 'rounds', 'num_samples', 'gen_tokens')
        at_least(self, 0, 'warmup', 'workers')
        at_least(self, 1, 'text_bytes')


BENCH = (BenchConfig, SystemConfig, GPTConfig)
PLOTTED = ('positions',)  # the modes that draw --plot


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()
    elif device.type == 'mps':
        torch.mps.synchronize()


def setup(c):
    """Threads, device, dtype and the autocast context, as the config says."""
    use_threads(c['threads'])
    device = pick_device(c['device'], None)
    dtype = pick_dtype(c['dtype'], device)
    return device, dtype, autocast_context(device, dtype)


def variants(c):
    """{name: overrides} of --variants, each checked before anything runs (one named twice too: timed once)."""
    names = c['variants'].split(',')
    twice = sorted({v for v in names if names.count(v) > 1})
    if twice:
        raise ConfigError(f"variants={c['variants']!r} names {twice[0]} twice; list each variant once")
    return {v: parse_variant(v, c, BENCH) for v in names}


def build(c, overrides, device):
    """The benchmarked model of one variant: the same seed, so the same weights, for every variant."""
    torch.manual_seed(c['seed'])
    return GPT(model_config(dict(c, **overrides), c['vocab_size'])).to(device)


# Dense bfloat16 tensor-core peak of one GPU, from NVIDIA's datasheets (H100 / H200 SXM: 989 TFLOPS;
# A100: 312), for the model FLOPs utilisation; other GPUs get no MFU column
PEAK_BF16 = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12}


def peak_flops(device, dtype):
    if device.type != 'cuda' or dtype not in ('bfloat16', 'float16'):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def flops_per_token(model, T):
    """Training FLOPs per token as nanoGPT (PaLM, appendix B) counts them: 6 per weight, plus the attention's
    12 * n_layer * n_embd * T. The wavelet's own arithmetic is not counted: what it costs lowers the MFU."""
    cfg = model.config
    return 6 * model.get_num_params() + 12 * cfg.n_layer * cfg.n_embd * T


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
        train_once(r['model'], r['step_model'], r['opt'], r['x'], autocast)

    for name, r in runs.items():  # warm up (and compile) every variant before timing any
        progress(f"warming up {name}")
        for _ in range(c['warmup']):
            step(r)
    for i in range(c['rounds']):  # interleaved: variant A, B, C, A, B, C, ...
        progress(f"round {i + 1} of {c['rounds']}")
        for r in runs.values():
            r['times'].append(timed(lambda: step(r), c['steps'], device))

    tokens = c['batch_size'] * c['block_size']
    peak = peak_flops(device, dtype)
    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}, "
          f"batch {c['batch_size']} x {c['block_size']}, {c['n_layer']} layers x {c['n_embd']}, compile={c['compile']}, "
          f"median of {c['rounds']} rounds of {c['steps']} steps")
    print(f"| variant | params | ms / iter | vs {next(iter(runs))} | tokens/s |" + (" MFU |" if peak else ""))
    print("|---|---|---|---|---|" + ("---|" if peak else ""))
    results, base = {}, None
    for name, r in runs.items():
        seconds = median(r['times'])
        base = base or seconds
        results[name] = 1000 * seconds
        mfu = f" {flops_per_token(r['model'], c['block_size']) * tokens / seconds / peak:.1%} |" if peak else ""
        print(f"| {name} | {r['model'].get_num_params():,} | {1000 * seconds:.1f} | {seconds / base:.3f} | "
              f"{tokens / seconds:,.0f} |" + mfu)
    return results


def median(xs):
    return sorted(xs)[len(xs) // 2]


def timed(step, n, device):
    """Seconds per call of step(), over n calls, the device's queue drained at both ends."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return (time.perf_counter() - t0) / n


def bench_generate(c):
    """
    Tokens per second with the context full (block_size tokens, the slowest case for both paths):
    the decoding step (one token through the Cache; on CUDA a replayed graph unless --graph=False)
    against re-running the whole context, each followed by sampling, interleaved across variants.
    Then the wall time of generate() for gen_tokens from a one-token prompt: the context re-encodings
    at the block_size boundary included, after one warm-up run of the same length for every variant.
    """
    load = os.getloadavg()[0]  # before we add to it: the CPU may be shared with other jobs
    device, dtype, autocast = setup(c)
    T, B = c['block_size'], c['num_samples']
    graph = c['graph'] and device.type == 'cuda'
    runs = {}
    with autocast, decoding(device):
        for name, overrides in variants(c).items():
            model = build(c, overrides, device).eval()
            x = torch.randint(0, c['vocab_size'], (B, T), device=device)
            cache = model.new_cache()
            model(x[:, :-1], cache=cache)  # positions 0 .. T-2; each timed step writes position T-1
            step = decoding_step(model, cache, x[:, -1:], graph=graph, compile=c['compile'])
            runs[name] = dict(model=model, x=x, cache=cache, step=step, cached=[], recomputed=[])

    def cached_step(r):
        r['cache'].pos.fill_(T - 1)
        sample_next(r['step'](r['x'][:, -1:])[:, -1], 1.0)

    def recomputed_step(r):
        logits, _ = r['model'](r['x'])
        sample_next(logits[:, -1], 1.0)

    def whole(r):
        generate(r['model'], r['x'][:, :1], c['gen_tokens'], generator=torch.Generator(device).manual_seed(c['seed']),
                 graph=graph, compile=c['compile'])

    with autocast, decoding(device):  # as in generate()
        for name, r in runs.items():  # every variant warmed up, the long generation included, before any timing
            progress(f"warming up {name} ({c['gen_tokens']:,} tokens)")
            for _ in range(c['warmup']):
                cached_step(r)
                recomputed_step(r)
            whole(r)
        for i in range(c['rounds']):  # interleaved, as in training
            progress(f"round {i + 1} of {c['rounds']}")
            for r in runs.values():
                r['cached'].append(timed(lambda: cached_step(r), 10 * c['steps'], device))
                r['recomputed'].append(timed(lambda: recomputed_step(r), c['steps'], device))
        for name, r in runs.items():
            progress(f"generate() of {c['gen_tokens']:,} tokens, {name}")
            r['whole'] = timed(lambda: whole(r), 1, device)

    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, load average {load:.2f} before, "
          f"{B} sequence(s), {c['n_layer']} layers x {c['n_embd']}, block_size {T}, vocab {c['vocab_size']}, "
          f"step: {'CUDA graph' if graph else 'eager'}{', compiled' if c['compile'] else ''}, median of {c['rounds']} rounds")
    print(f"| variant | decoding step, tokens/s at context {T} | recomputed tokens/s | speedup | "
          f"{c['gen_tokens']:,} tokens x {B}, generate() (s) | generate() tokens/s |")
    print("|---|---|---|---|---|---|")
    results = {}
    for name, r in runs.items():
        cached, recomputed = B / median(r['cached']), B / median(r['recomputed'])
        results[name] = dict(cached=cached, recomputed=recomputed, whole=r['whole'])
        print(f"| {name} | {cached:,.0f} | {recomputed:,.1f} | {cached / recomputed:.1f}x | {r['whole']:.1f} | "
              f"{B * c['gen_tokens'] / r['whole']:,.0f} |")
    return results


def bench_wavelet(c):
    """
    The wavelet operation alone, forward and backward on a (batch, block_size, n_embd) float32 stream, in each
    of its forms: 'haar' as the plain autograd form (causal_moving_average and a cat) and as MovingAverage (what
    the model runs); the learnable kernels by FFT (a CPU's form), by Toeplitz matmuls through autograd, and as
    ToeplitzConvolution (what the model runs on a GPU). Interleaved, median of rounds.
    """
    device, dtype, autocast = setup(c)
    cfg = model_config(dict(c, wavelet='learnable'), c['vocab_size'])  # the windows of these settings
    wavelet, haar = Wavelet(cfg).to(device), Wavelet(replace(cfg, wavelet='haar')).to(device)
    window = torch.tensor(wavelet_windows(cfg), dtype=torch.float32, device=device)
    T, n = c['block_size'], wavelet.n_mod
    x = torch.randn(c['batch_size'], T, c['n_embd'], device=device, requires_grad=True)
    kernel = wavelet.kernel().detach().requires_grad_()
    rows = wavelet.kernel_rows().detach().requires_grad_()  # the same kernels as ToeplitzConvolution takes them
    products = torch.get_autocast_dtype(device.type) if dtype in ('bfloat16', 'float16') else torch.float32

    def plain(y):
        return torch.cat([y, x[..., n:]], -1)
    forms = {
        'haar, plain (autograd through a gather)': lambda: plain(causal_moving_average(x[..., :n], window, False)),
        'haar, MovingAverage (its own backward)': lambda: MovingAverage.apply(x, *haar.indices(T)),
        'learnable, FFT': lambda: plain(causal_convolution(x[..., :n], kernel)),
        'learnable, Toeplitz matmuls (autograd)': lambda: plain(toeplitz_convolution(x[..., :n], kernel)),
        'learnable, ToeplitzConvolution (its own backward)': lambda: ToeplitzConvolution.apply(x, rows, toeplitz_index(T, wavelet.span, device), None, products),
    }
    times = {name: [] for name in forms}

    def run(form):
        with autocast:
            form().sum().backward()
    for form in forms.values():
        for _ in range(max(1, c['warmup'])):
            run(form)
    for r in range(c['rounds']):
        progress(f"round {r + 1} of {c['rounds']}")
        for name, form in forms.items():
            times[name].append(timed(lambda: run(form), c['steps'], device))
    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}, "
          f"x: {c['batch_size']} x {T} x {c['n_embd']} float32 ({n} averaged), median of {c['rounds']} rounds of "
          f"{c['steps']}")
    print("| form | ms, forward + backward |")
    print("|---|---|")
    for name, t in times.items():
        print(f"| {name} | {1000 * median(t):.3f} |")
    return {name: 1000 * median(t) for name, t in times.items()}


def progress(what):
    """A line on stderr while a long measurement runs: the table comes at the end, on stdout."""
    print(f"  {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


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
        for r in runs.values():  # warm-up: a first re-encoding included
            generate(r['model'], torch.zeros(c['num_samples'], 1, dtype=torch.long, device=device), T + 2)
        for i in range(c['rounds']):
            progress(f"round {i + 1} of {c['rounds']}")
            for r in runs.values():
                times = [time.perf_counter()]
                sync(device)
                generate(r['model'], torch.zeros(c['num_samples'], 1, dtype=torch.long, device=device), n - 1,
                         generator=torch.Generator(device).manual_seed(c['seed']),
                         on_token=lambda _: (sync(device), times.append(time.perf_counter())))
                per_token = [b - a for a, b in zip(times, times[1:])]  # token at position i + 1
                r['bands'].append([sum(per_token[i:i + band]) / len(per_token[i:i + band]) for i in range(0, n - 1, band)])
    rows = {name: [1000 * median(col) for col in zip(*r['bands'])] for name, r in runs.items()}
    print(f"device {device} ({dtype}), {torch.get_num_threads()} threads, {c['num_samples']} sequence(s), "
          f"{c['n_layer']} layers x {c['n_embd']}, block_size {T}, vocab {c['vocab_size']}, median of {c['rounds']} rounds")
    print("| positions | " + " | ".join(f"{name}: ms/token" for name in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for i, start in enumerate(range(0, n - 1, band)):
        print(f"| {start + 1}-{min(start + band, n - 1)} | " + " | ".join(f"{ms[i]:.2f}" for ms in rows.values()) + " |")
    if c['plot']:
        draw_positions(rows, band, n, c['plot'], f"time per generated token, {c['n_layer']} layers x {c['n_embd']}, "
                       f"block_size {T}, {device}, {torch.get_num_threads()} thread(s)")
    return rows


def draw_positions(rows, band, n, path, title):
    """positions.png: ms per token against position, a dotted line at each block_size boundary (where a
    model with a context limit encodes its context again)."""
    try:
        import matplotlib
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
        return
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, ms in rows.items():
        ax.plot([min(start + band, n - 1) for start in range(0, n - 1, band)], ms, marker='o', label=name)
    for k in range(1, 8):  # n = 8 x block_size
        ax.axvline(k * n // 8, color='grey', linewidth=0.7, linestyle=':', label='block_size boundaries' if k == 1 else None)
    ax.set_xlabel('position of the generated token')
    ax.set_ylabel('ms per token (mean over the band)')
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    print(f"wrote {save_figure(fig, path)}")


def bench_coder(c):
    """
    Equal-Info's coder (equal_info/): bytes per second compressing (prepare/equal_info.py's encode_streams) and
    decompressing (decode.py's decode_streams) the first --text_bytes of a text's train split, 512 streams,
    in one process and in --workers processes, rounds interleaved; each round's text is checked identical.
    The best round counts (the machine may be shared: the load average is printed before and after).
    """
    from equal_info.coder import cores, decode_streams, encode_parts, encode_streams
    from equal_info.m1 import ByteModel
    from texts import input_text, split_text
    if not c['m1']:
        raise ConfigError("--mode=coder needs --m1=PATH, an M1 checkpoint (train one with config/equal_info_m1.py)")
    load = os.getloadavg()
    m1 = ByteModel(c['m1'])
    coder = m1.coder(16)
    data = split_text(input_text(c['input']))['train'][:c['text_bytes']]
    workers = sorted({1, len(encode_parts(len(data), 512, c['workers'] or cores()))})  # the processes it really starts
    times = {(d, w): [] for w in workers for d in ('compress', 'decompress')}
    for r in range(c['warmup'] + c['rounds']):
        for w in workers:
            start = time.perf_counter()
            values, _, streams, _ = encode_streams(coder, data, 512, 16, workers=w, progress=False)
            middle = time.perf_counter()
            back = b''.join(decode_streams(coder, values, streams, 16, workers=w, progress=False))
            end = time.perf_counter()
            if back != data:
                raise RuntimeError("the coder's round trip is not exact")
            if r >= c['warmup']:
                times['compress', w].append(middle - start)
                times['decompress', w].append(end - middle)
    print(f"{len(data):,} bytes of {c['input']} (train), M1 {c['m1']} ({coder.cap}-byte windows of 16 bits, "
          f"{len(data) / len(values):.2f} bytes each), {os.cpu_count()} cores, load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; one thread per process; {c['rounds']} rounds, best and median\n")
    print("| direction | processes | best kB/s | median kB/s |")
    print("|---|---|---|---|")
    for (d, w), t in times.items():
        print(f"| {d} | {w} | {len(data) / min(t) / 1e3:,.1f} | {len(data) / median(t) / 1e3:,.1f} |")
    integer, floats, n = m1_costs(m1.model, coder, data[:200_000])
    print(f"\nM1 inside the windows of the first {n:,} bytes: {integer:.4f} bits/byte in integers (the coder's), "
          f"{floats:.4f} with the float model's own tables (coder version 1's rule): {integer / floats - 1:+.3%}")


def m1_costs(model, coder, data):
    """Bits per byte of M1 inside the windows the coder cuts from `data`: as the coder computes them, and as
    the float GPT it was quantised from would (a teacher-forced forward of each window, its softmax made
    14-bit tables by coder version 1's rule: 1 + floor(p (2^14 - 256)), the rest to the most probable byte)."""
    from equal_info.coder import encode_streams
    from tokens.bytes import BOS
    _, counts, _, information = encode_streams(coder, data, 512, 16, progress=False)
    windows = np.zeros((len(counts), coder.cap), dtype=np.int64)
    ends = np.cumsum(counts)
    for i, (e, n) in enumerate(zip(ends, counts)):
        windows[i, :n] = np.frombuffer(data[e - n:e], dtype=np.uint8)
    x, bits = torch.from_numpy(windows), 0.0
    with torch.inference_mode():
        for part, used in zip(x.split(4096), torch.from_numpy(np.array(counts)).split(4096)):
            logits, _ = model(torch.cat([torch.full((len(part), 1), BOS), part[:, :-1]], 1), part)
            p = torch.softmax(logits[..., :256].double(), -1)
            freq = 1 + torch.floor(p * ((1 << 14) - 256))
            freq.scatter_add_(-1, p.argmax(-1, keepdim=True), (1 << 14) - freq.sum(-1, keepdim=True))
            cost = -torch.log2(freq.gather(-1, part[..., None])[..., 0] / (1 << 14))
            bits += float(cost[torch.arange(coder.cap) < used[:, None]].sum())
    return information / len(data), bits / len(data), len(data)


# ---------------------------------------------------------------------------------------------- --mode=ops
# What a GPU is asked to run, counted on any machine: the backend calls under autograd (each at least one
# kernel on a GPU), with the forms a GPU runs forced (model.FORMS_OF), bf16 autocast and fused AdamW.

SYNCS = {'_local_scalar_dense', 'item', 'nonzero', 'masked_select', 'is_nonzero', 'equal', '_unique', '_unique2',
         'unique_dim', 'unique_consecutive'}  # calls that wait for the device: the host reads a result
ALLOCATIONS = {'empty', 'empty_like', 'empty_strided', 'new_empty', 'new_empty_strided',  # no kernel of their own
               '_unsafe_view'}  # a view that autograd does not track


class OpCounter(TorchDispatchMode):
    """Counts the calls below autograd by name (ops), and apart those that make the host wait for the device
    (syncs), a boolean index among them (it runs a nonzero). Views and allocations launch nothing: not counted."""

    def __init__(self):
        super().__init__()
        self.ops, self.syncs = collections.Counter(), collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        masks = name.startswith('index') and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                                                 for a in args if isinstance(a, (list, tuple)) for i in a)
        if name in SYNCS or masks:
            self.syncs[name] += 1
        if not (func.is_view or name in ALLOCATIONS):
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self):
        return sum(self.ops.values())


@contextmanager
def gpu_forms():
    """The forms a GPU runs, on any device (the model picks them by device otherwise)."""
    import model as model_module
    saved, model_module.FORMS_OF = model_module.FORMS_OF, 'cuda'
    try:
        yield
    finally:
        model_module.FORMS_OF = saved


def counted(fn):
    """fn() run once to warm up, then once under an OpCounter, which is returned."""
    fn()
    with OpCounter() as counter:
        fn()
    return counter


def training_ops(c, overrides):
    """The OpCounter of one eager training step (forward, backward, clipping, fused AdamW) under bf16 autocast."""
    model = build(c, overrides, torch.device('cpu'))
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), 'cuda')  # 'cuda': fused AdamW, one call per step
    x = torch.randint(0, c['vocab_size'], (1, c['block_size']))
    with gpu_forms():
        return counted(lambda: train_once(model, model, opt, x, torch.autocast('cpu', dtype=torch.bfloat16)))


def train_once(model, step_model, opt, x, autocast):
    """One training iteration as bench.py times it."""
    with autocast:
        _, losses = step_model(x, x)
    losses['loss'].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


LAUNCH = re.compile(r'^ +(?:\w+ = )?(cpp_fused_\w+|triton_\w+\.run|extern_kernels\.\w+|torch\.ops\.aten\.\w+(?:\.\w+)?)\(',
                    re.M)


def compiled_launches(c, overrides, n_layer):
    """Kernel launches of one compiled training step (forward and backward), read off the code inductor writes:
    its own kernels (C++ here, Triton on a GPU) and the library calls between them. The whole step one graph."""
    from torch._inductor.utils import run_and_get_code
    torch._dynamo.reset()
    model = build(dict(c, n_layer=n_layer), overrides, torch.device('cpu'))
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randint(0, c['vocab_size'], (1, c['block_size']))

    def step():
        _, losses = compiled(x, x)
        losses['loss'].backward()
    threads = torch.get_num_threads()  # one: with more, inductor's C++ for the Toeplitz form's gradient corrupts
    torch.set_num_threads(1)           # the heap on a CPU (torch 2.13, the code before this form's changes too)
    try:
        with gpu_forms():
            _, codes = run_and_get_code(step)
    finally:
        torch.set_num_threads(threads)
    assert len(codes) == 2, f"{len(codes)} compiled graphs, not a forward and a backward"
    return sum(len(LAUNCH.findall(code[code.index('def call('):])) for code in codes)


def decode_ops(c, overrides):
    """The OpCounter of one decoding step with sampling, as a CUDA graph captures it (generate.decoding_step):
    weights cast once to bf16, autocast with its cache off, the context full but one."""
    model = build(c, overrides, torch.device('cpu')).eval()
    x = torch.randint(0, c['vocab_size'], (c['num_samples'], c['block_size']))
    cache = model.new_cache()
    autocast = torch.autocast('cpu', dtype=torch.bfloat16, cache_enabled=False)
    with gpu_forms(), torch.no_grad(), autocast:  # not inference_mode: the calls it would hide undecomposed
        model(x[:, :-1], cache=cache)
        step = sampling_step(cast_once(model, torch.bfloat16), cache)

        step(x[:, -1:])  # warm up, then the step alone counted, at the same position
        cache.pos.fill_(c['block_size'] - 1)
        with OpCounter() as counter:
            step(x[:, -1:])
        return counter


def bench_ops(c):
    """
    Per variant: the backend calls of an eager training step, the kernel launches of a compiled one, the calls
    in a step that make the host wait for the device, and the calls of a decoding step as a CUDA graph replays
    it; each with the GPU's forms forced, on any machine, and per block (or layer) against the first variant.
    """
    use_threads(c['threads'])
    runs = variants(c)
    L, compile_layers = c['n_layer'], 2
    rows = {}
    for name, overrides in runs.items():
        print(f"counting {name} ...", file=sys.stderr, flush=True)
        train = training_ops(c, overrides)
        rows[name] = dict(train=train.total, syncs=sum(train.syncs.values()),
                          launches=compiled_launches(c, overrides, compile_layers), decode=decode_ops(c, overrides).total,
                          decode16=decode_ops(dict(c, num_samples=16), overrides).total)
    base = rows[next(iter(rows))]
    print(f"{L} layers x {c['n_embd']}, block_size {c['block_size']}, vocab {c['vocab_size']}; the GPU's forms, "
          f"bf16 autocast, fused AdamW; compiled: {compile_layers} layers; decoding: {c['num_samples']} sequence(s), and 16")
    first = next(iter(rows))
    print(f"| variant | eager step, ops | a block vs {first} | host syncs a step | compiled step, launches | a block vs {first} "
          f"| decoding step, ops | a layer vs {first} | decoding 16 streams, ops | a layer vs {first} |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        r.update(train_block=(r['train'] - base['train']) / L, launch_block=(r['launches'] - base['launches']) / compile_layers,
                 decode_layer=(r['decode'] - base['decode']) / L, decode16_layer=(r['decode16'] - base['decode16']) / L)
        print(f"| {name} | {r['train']} | {r['train_block']:+.1f} | {r['syncs']} | {r['launches']} | "
              f"{r['launch_block']:+.1f} | {r['decode']} | {r['decode_layer']:+.1f} | {r['decode16']} | {r['decode16_layer']:+.1f} |")
    return rows


def main(argv):
    c, _ = parse_config(argv, BENCH, __doc__)
    if c['plot'] and c['mode'] not in PLOTTED:
        raise ConfigError(f"--plot draws the curves of --mode={' or '.join(PLOTTED)}, and --mode={c['mode']} has none; "
                          f"drop --plot")
    if c['plot']:
        check_figure(c['plot'], c['overwrite'], '--plot')  # now, not after the timing
    {'train': bench, 'generate': bench_generate, 'positions': bench_positions, 'wavelet': bench_wavelet,
     'coder': bench_coder, 'ops': bench_ops}[c['mode']](c)


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

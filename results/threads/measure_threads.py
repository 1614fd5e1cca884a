"""
How many CPU threads a training step and sampling want, on an idle or a busy machine (issue 28, item 2).

    python results/threads/measure_threads.py --rounds=3 > results/threads/log.txt

For each round, for each condition (the machine as it is; and with a competing job: one process spinning
on one core), for each thread count 1 .. cores, the median time of a few training steps of the quick
start's model (4 layers, width 128, context 128, batch 16, haar), of the paper's model (10 layers,
context 512, batch 8, haar), and of sampling 100 tokens from the quick start's model. Everything is
interleaved, so that a drift of the shared machine's load hits every cell alike; each line says the load
average before it. Not part of the project (results/ holds no module): a measurement kept with its log.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import torch

from generate import generate
from model import GPT, GPTConfig

WORKLOADS = {  # name: (GPTConfig, batch, timed steps)
    'quickstart step': (GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=27, wavelet='haar'), 16, 5),
    'paper step': (GPTConfig(n_layer=10, n_head=8, n_embd=128, block_size=512, vocab_size=27, wavelet='haar'), 8, 2),
    'sample 100 tokens': (GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=27, wavelet='haar'), 1, 1),
}


def timed(name, threads):
    """The median seconds of one step (a training step, or a whole sampling of 100 tokens) at this thread count."""
    torch.set_num_threads(threads)
    config, batch, steps = WORKLOADS[name]
    torch.manual_seed(0)
    model = GPT(config)
    times = []
    if name.startswith('sample'):
        model.eval()
        prompt = torch.zeros(1, 1, dtype=torch.long)
        generate(model, prompt, 10)  # warm-up
        t = time.perf_counter()
        generate(model, prompt, 100, generator=torch.Generator().manual_seed(0))
        return time.perf_counter() - t
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 27, (batch, config.block_size))
    for i in range(steps + 1):  # the first is a warm-up
        t = time.perf_counter()
        _, losses = model(x, x)
        losses['loss'].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--workloads', default=','.join(WORKLOADS))
    args = p.parse_args()
    cores = os.cpu_count() or 1
    print(f"# {cores} cores, torch {torch.__version__}, torch's default threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    results = {}
    for r in range(args.rounds):
        for busy in (False, True):
            spinner = subprocess.Popen([sys.executable, '-c', 'while True: pass']) if busy else None
            try:
                time.sleep(1.0 if busy else 0.0)
                for name in args.workloads.split(','):
                    for threads in range(1, cores + 1):
                        load = os.getloadavg()[0]
                        s = timed(name, threads)
                        results.setdefault((name, busy, threads), []).append(s)
                        print(f"round {r + 1} | {'busy (+1 spinning job)' if busy else 'as it is':22} | {name:17} | "
                              f"threads {threads} | {s:7.3f} s | load {load:.2f}", flush=True)
            finally:
                if spinner:
                    spinner.kill()
                    spinner.wait()
    print("\n# median over rounds, seconds (ratio to the best thread count of that row)")
    for name in args.workloads.split(','):
        for busy in (False, True):
            med = {t: statistics.median(results[(name, busy, t)]) for t in range(1, cores + 1)}
            best = min(med.values())
            cells = ', '.join(f"{t} thread{'s' if t > 1 else ''}: {v:.3f} ({v / best:.2f}x)" for t, v in med.items())
            print(f"{name:17} | {'busy (+1 spinning job)' if busy else 'as it is':22} | {cells}")


if __name__ == '__main__':
    main()

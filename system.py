"""
The machine a script runs on: the settings every script has (device, dtype, seed), the device and
dtype they pick, autocast, memory (a model or a batch that cannot fit is a one-line error before any
work), and how to run another script of this project as a command.
"""
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from checks import at_least, one_of
from errors import ConfigError, reason
from model import GPT


@dataclass
class SystemConfig:
    device: str = 'auto'          # 'auto' | 'cpu' | 'cuda' | 'cuda:1' | 'mps'
    dtype: str = 'auto'           # 'auto' (bfloat16 on GPUs that have it, else float16; float32 on CPU and mps) | 'float32' | 'bfloat16' | 'float16'
    seed: int = 1337              # the initial weights, the batches, the samples
    threads: int = 0              # CPU threads; 0: one per idle core (the cores less the load average at the start), at least 1

    def __post_init__(self):
        one_of(self, 'dtype', 'auto', 'float32', 'bfloat16', 'float16')
        at_least(self, 0, 'threads')
        if self.threads > cores():  # more would only slow the work down (and a huge number crashes torch)
            raise ValueError(f"threads={self.threads}: this machine has {cores()} CPU cores; use 1 to {cores()} "
                             f"(0: torch's default)")
        if not 0 <= self.seed < 2 ** 63:  # what both numpy's and torch's generators take
            raise ValueError(f"seed={self.seed}: use a whole number from 0 to 2**63 - 1")


def cores():
    """The machine's CPU cores (what compare.py shares among its runs too)."""
    return os.cpu_count() or 1


TORCH_THREADS = torch.get_num_threads()  # torch's own default, before any script sets another


def default_threads():
    """threads=0: torch's default (the cores, or OMP_NUM_THREADS as torchrun sets it) less the cores that other work
    keeps busy (the 1-minute load average, read once at the start), at least 1. Threads wait for each other at every
    operation, so on a busy machine more of them are far slower: on 2 cores under load, a quick start step took
    0.57 s at 1 thread and 3.5 s at 2, sampling 11 times longer (results/threads/). On an idle machine this is
    torch's default. No load average (Windows): torch's default."""
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return TORCH_THREADS
    return max(1, min(TORCH_THREADS, round(cores() - busy)))


def use_threads(n):
    """n CPU threads for torch's own work (0: default_threads())."""
    torch.set_num_threads(n or default_threads())


def pick_device(name, local_rank=None):
    """'auto' -> cuda, mps or cpu; a named device is checked, with a one-line error if absent."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
    if name == 'cuda' and local_rank is not None:
        name = f'cuda:{local_rank}'
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if device.type == 'cuda' and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        have = f"{torch.cuda.device_count()} CUDA device(s)" if torch.cuda.is_available() else "no CUDA"
        raise ConfigError(f"device={name!r} but this machine has {have}; use device='auto' or 'cpu'")
    if device.type == 'mps' and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r} but this machine has no Apple GPU; use device='auto' or 'cpu'")
    if device.type not in ('cpu', 'cuda', 'mps'):
        raise ConfigError(f"device={name!r} is not supported here; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def pick_dtype(name, device):
    """'auto' -> bfloat16 (float16 on GPUs without it) on CUDA, float32 elsewhere."""
    if name == 'auto':
        if device.type == 'cuda':
            return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
        return 'float32'
    if name != 'float32' and device.type == 'cpu':
        raise ConfigError(f"dtype={name} is for GPUs; use dtype='float32' (or 'auto') on the CPU")
    return name


def autocast_context(device, dtype):
    """Mixed precision for GPU dtypes; float32 needs none."""
    return nullcontext() if dtype == 'float32' else torch.autocast(device.type, dtype=getattr(torch, dtype))


def out_of_memory(e):
    """Whether an exception is an allocation that failed (torch's words for it on each device)."""
    return isinstance(e, (torch.OutOfMemoryError, MemoryError)) or (isinstance(e, RuntimeError) and any(
        words in str(e) for words in ("can't allocate memory", 'out of memory', 'negative dimension', 'overflow')))


def build_model(gpt_config):
    """GPT(gpt_config) on the CPU, or a one-line error if its weights do not fit in memory."""
    try:
        return GPT(gpt_config)
    except (RuntimeError, MemoryError) as e:
        if not out_of_memory(e):
            raise
        raise ConfigError(f"not enough memory for this model's weights ({reason(e, 80)}); lower n_layer, n_embd, "
                          f"block_size or fourier_freqs")


def memory_bytes(device):
    """The memory of a device in bytes (a GPU's own, else the machine's), or None where it cannot be told."""
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None


def check_batch_memory(c, world, device):
    """A one-line error, before any work, for a batch that cannot fit in memory: what one batch's activations
    (each layer's float32 residual stream, at the least) or the evaluation's window offsets take alone."""
    activations = c['batch_size'] * c['block_size'] * c['n_embd'] * c['n_layer'] * 4
    need, have = max(activations, c['eval_iters'] * c['batch_size'] * world * 16), memory_bytes(device)
    if have is not None and need > have:
        raise ConfigError(f"batch_size={c['batch_size']}, eval_iters={c['eval_iters']} and block_size={c['block_size']} "
                          f"need {need / 2 ** 30:.3g} GiB at the least, and {device} has {have / 2 ** 30:.3g} GiB; "
                          f"lower batch_size (raise gradient_accumulation_steps) or eval_iters")
    sample = c['sample_tokens'] * 48  # the final sample's ids, on the device and as Python numbers (sampling_bytes)
    if have is not None and sample > have:
        raise ConfigError(f"sample_tokens={c['sample_tokens']:,} need {sample / 2 ** 30:.3g} GiB at the least, and "
                          f"{device} has {have / 2 ** 30:.3g} GiB; lower sample_tokens (a sample is printed at the end)")


def sampling_bytes(model_args, batch, length):
    """What sampling `batch` sequences of `length` tokens (prompt and new) takes, at the least, besides the weights: the
    token ids (on the device and as Python lists for the output: about 48 bytes a token), each layer's float32 keys and
    values over the context, and a forward over a whole context (its residual streams, the attention scores, the
    logits over the vocabulary)."""
    T, C, L = model_args['block_size'], model_args['n_embd'], model_args['n_layer']
    ids = batch * length * (8 + 40)
    cache = 2 * L * batch * T * C * 4
    forward = batch * T * (4 * C + model_args['n_head'] * T + model_args['vocab_size']) * 4
    return ids + cache + forward


def script_path(name):
    """The path of one of this project's scripts, to run it as a command (never to import it)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def run_command(name, args):
    """The argv that runs a script of this project with this Python."""
    return [sys.executable, script_path(name)] + list(args)

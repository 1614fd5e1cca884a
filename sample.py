"""
Sample from a trained checkpoint, and turn the tokens back into text, sound or music.

    python sample.py --out_dir=out/quickstart --start="the meaning of " --max_new_tokens=300
    python sample.py --out_dir=out/youtubemix_wavelet --seconds=1.0 --output=piano.wav
    python sample.py --out_dir=out/maestro_wavelet --max_new_tokens=2000 --output=piece.mid
    python sample.py --out_dir=out/quickstart --start=FILE:prompt.txt   # a prompt from a file (.txt/.wav/.mid)
    python sample.py --out_dir=out/quickstart --cache=False   # re-run the context for each token: slow, same tokens
    python sample.py --out_dir=out/piano --start=FILE:x.wav --seconds=2 --with_prompt=False   # only the 2 new seconds

Settings are --key=value, as in train.py (python sample.py --help lists them). Text is printed
(or written with --output=x.txt), audio becomes a 16 kHz mono 16-bit .wav, music a .mid file: the
dataset's kind of token (tokens/) decides. Model settings given here must match the checkpoint's.
A file that exists is replaced only with --overwrite=True; a checkpoint or a dataset's file never.
"""
import math
import os
import sys
from dataclasses import dataclass

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import torch

from checkpoints import load_checkpoint, load_model_state
from checks import at_least, within
from dataset import tokenizer_for
from errors import ConfigError, UserError, main_guard
from generate import generate
from model import GPTConfig
from outputs import check_file, check_not_input
from settings import model_settings, parse_config
from system import (SystemConfig, autocast_context, build_model, memory_bytes, out_of_memory, pick_device, pick_dtype,
                    sampling_bytes, use_threads)


@dataclass
class SampleConfig:
    out_dir: str = 'out'          # where ckpt.pt is
    start: str = ''               # prompt: text, or FILE:path (.txt, .wav, .mid); '' starts from one neutral token
    num_samples: int = 1          # sequences sampled side by side
    max_new_tokens: int = 500
    seconds: float = 0.0          # audio: length to generate in seconds (overrides max_new_tokens)
    temperature: float = 1.0      # 0 means greedy
    top_k: int = 0                # 0 means no top-k cut
    cache: bool = True            # incremental decoding (KV cache, streaming wavelet); False: re-run the context
    slide: int = 0                # context full: drop this many oldest tokens, re-encode the rest (0: block_size // 2)
    output: str = ''              # file to write; default: printed text, or out_dir/sample.{wav,mid}
    overwrite: bool = False       # the output may replace a file that exists (never a checkpoint or a dataset's file)
    compile: bool = False         # compile the decoding step (torch.compile): a minute at start, then faster tokens
    with_prompt: bool = True      # the output starts with the prompt (all of it: a long recording too); False: new tokens only

    def __post_init__(self):
        at_least(self, 1, 'num_samples')
        at_least(self, 0, 'max_new_tokens', 'top_k', 'slide')
        within(self, 'seconds', 0.0)
        within(self, 'temperature', 0.0)


SAMPLE = (SampleConfig, SystemConfig, GPTConfig)


def output_paths(path, n):
    """The files n samples go to: path, or path with _0, _1, ... before its suffix."""
    root, ext = os.path.splitext(path)
    return [path] if n == 1 else [f'{root}_{i}{ext}' for i in range(n)]


def new_tokens(c, tok, prompt, device, model_args):
    """How many tokens to generate (--seconds of audio, or max_new_tokens), checked against the memory that sampling
    them takes (system.sampling_bytes: the ids, the cache, a forward), before any is allocated."""
    n = c['max_new_tokens']
    if c['seconds']:
        if 'sample_rate' not in tok.meta:
            raise ConfigError("--seconds is for audio checkpoints; use --max_new_tokens")
        n = c['seconds'] * tok.meta['sample_rate']
    need, have = sampling_bytes(model_args, c['num_samples'], len(prompt) + n), memory_bytes(device)
    if need == math.inf or (have is not None and need > have):
        has = f", and {device} has {have / 2 ** 30:.3g} GiB" if have is not None else ""
        raise UserError(f"not enough memory for {c['num_samples']:,} x {n:.3g} new tokens: sampling them takes "
                        f"{need / 2 ** 30:.3g} GiB at the least{has}; lower max_new_tokens, seconds or num_samples")
    return round(n)


def main(argv):
    c, given = parse_config(argv, SAMPLE, __doc__, from_checkpoint=(GPTConfig,))
    prompt_file = {'--start': c['start'][5:] if c['start'].startswith('FILE:') else None}  # an input: never written
    for path in output_paths(c['output'], min(c['num_samples'], 2)) if c['output'] else ():
        check_not_input(path, prompt_file, '--output')
        check_file(path, c['overwrite'])  # now, not after the loading (every file: once num_samples is known to fit)
    ckpt_path = os.path.join(c['out_dir'], 'ckpt.pt')
    ckpt = load_checkpoint(ckpt_path)
    model_settings(c, given, ckpt['model_args'], keep=True, source=ckpt_path)  # the checkpoint's model: say if told otherwise
    tok = tokenizer_for(ckpt['meta'])
    path = c['output'] or ('' if tok.text else os.path.join(c['out_dir'], 'sample' + tok.suffix))
    if path:
        tok.check_output_name(path)
    for p in output_paths(path, min(c['num_samples'], 2)) if path else ():  # out_dir/sample.wav too
        check_not_input(p, prompt_file, '--output')
    tok.ready()  # what writing the samples needs (a library, Equal-Info's M1), before the generation
    use_threads(c['threads'])
    device = pick_device(c['device'])
    dtype = pick_dtype(c['dtype'], device)
    if c['slide'] > ckpt['model_args']['block_size']:
        raise ConfigError(f"slide={c['slide']} should be in 0..block_size ({ckpt['model_args']['block_size']})")
    prompt = tok.prompt(c['start'])
    max_new_tokens = new_tokens(c, tok, prompt, device, ckpt['model_args'])
    paths = output_paths(path, c['num_samples']) if path else []
    for p in paths:
        check_not_input(p, prompt_file, '--output')
        check_file(p, c['overwrite'])
    model = build_model(GPTConfig(**ckpt['model_args']))
    load_model_state(model, ckpt['model'])
    model.eval().to(device)

    idx = torch.tensor([prompt] * c['num_samples'], dtype=torch.long, device=device)
    g = torch.Generator(device=device).manual_seed(c['seed'])
    from tqdm import tqdm
    try:
        with autocast_context(device, dtype), tqdm(total=max_new_tokens, unit='token', desc='sampling',
                                                   mininterval=1.0, disable=max_new_tokens < 1000) as bar:
            out = generate(model, idx, max_new_tokens, temperature=c['temperature'], top_k=c['top_k'] or None,
                           generator=g, use_cache=c['cache'], slide=c['slide'], compile=c['compile'],
                           on_token=lambda _: bar.update())
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        raise UserError(f"not enough memory for {c['num_samples']} x {max_new_tokens:,} new tokens on {device}; "
                        f"lower max_new_tokens, seconds or num_samples")
    if not c['with_prompt']:
        out = out[:, len(prompt):]
    for i, row in enumerate(out.tolist()):
        if not paths:
            print(tok.decode(row) + '\n' + '-' * 40)
        else:
            print(f"wrote {tok.write(row, paths[i])}")


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

"""
Sample from a trained checkpoint, and turn the tokens back into text, sound or music.

    python sample.py --out_dir=out/quickstart --start="the meaning of " --max_new_tokens=300
    python sample.py --out_dir=out/youtubemix_wavelet --seconds=1.0 --output=piano.wav
    python sample.py --out_dir=out/maestro_wavelet --max_new_tokens=2000 --output=piece.mid
    python sample.py --out_dir=out/quickstart --start=FILE:prompt.txt   # a prompt from a file (.txt/.wav/.mid)
    python sample.py --out_dir=out/quickstart --cache=False   # re-run the context for each token: slow, same tokens

Settings are --key=value, as in train.py. Text is printed (or written with --output=x.txt),
audio becomes a 16 kHz mono 16-bit .wav, music a .mid file.
"""
import os
import sys

import numpy as np
import torch

from model import GPT, GPTConfig
from train import ConfigError, autocast_context, load_model_state, parse_config, pick_device, pick_dtype

DEFAULTS = dict(
    out_dir='out',            # where ckpt.pt is
    start='',                 # prompt: text, or FILE:path (.txt, .wav, .mid); '' starts from one neutral token
    num_samples=1,            # sequences sampled side by side
    max_new_tokens=500,
    seconds=0.0,              # audio: length to generate in seconds (overrides max_new_tokens)
    temperature=1.0,          # 0 means greedy
    top_k=0,                  # 0 means no top-k cut
    seed=1337,
    cache=True,               # incremental decoding (KV cache, streaming wavelet); False: re-run the context
    slide=0,                  # context full: drop this many oldest tokens, re-encode the rest (0: block_size // 2)
    device='auto',
    dtype='auto',
    output='',                # file to write; default: printed text, or out_dir/sample.{wav,mid}
)


def decode_text(ids, meta):
    if meta['tokenizer'] == 'chars':
        return ''.join(meta['itos'][i] for i in ids)
    if meta['tokenizer'] == 'gpt2':
        from prepare.bpe import decode
        return decode(ids)
    raise ConfigError(f"tokenizer {meta['tokenizer']!r} does not decode to text")


def encode_prompt(start, meta):
    """The prompt as token ids, from text or from a file of the dataset's kind."""
    kind = meta['tokenizer']
    path = start[5:] if start.startswith('FILE:') else None
    if path and not os.path.exists(path):
        raise ConfigError(f"prompt file {path} does not exist")
    if kind == 'mulaw':
        from prepare.youtubemix import encode_file, mulaw_encode
        return encode_file(path).tolist() if path else mulaw_encode(np.zeros(1)).tolist()
    if kind == 'midi_events':
        from prepare.maestro import encode_file
        return encode_file(path).tolist() if path else [meta.get('start_token', 0)]
    text = open(path, encoding='utf-8').read() if path else start
    if kind == 'chars':
        from prepare.text8 import encode, normalize
        return encode(normalize(text) or ' ').tolist()
    if kind == 'gpt2':
        from prepare.bpe import encode_text
        return encode_text(text or '\n').tolist()
    raise ConfigError(f"unknown tokenizer {kind!r} in the checkpoint's meta")


def write_output(ids, meta, path, index):
    """Write one sample; returns the path written (or None when printed)."""
    kind = meta['tokenizer']
    if kind in ('chars', 'gpt2'):
        text = decode_text(ids, meta)
        if not path:
            print(text + '\n' + '-' * 40)
            return None
    root, ext = os.path.splitext(path)
    target = f"{root}_{index}{ext}" if index is not None else path
    if kind in ('chars', 'gpt2'):
        with open(target + '.tmp', 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(target + '.tmp', target)
    elif kind == 'mulaw':
        from prepare.youtubemix import write_wav
        write_wav(np.asarray(ids, dtype=np.uint8), target, meta)
    elif kind == 'midi_events':
        from prepare.maestro import write_midi
        write_midi(np.asarray(ids), target, meta)
    return target


def main(argv):
    c = parse_config(argv, DEFAULTS)
    ckpt_path = os.path.join(c['out_dir'], 'ckpt.pt')
    if not os.path.exists(ckpt_path):
        raise ConfigError(f"no checkpoint at {ckpt_path}; train one with train.py or pass --out_dir")
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    meta = ckpt['meta']
    device = pick_device(c['device'], None)
    dtype = pick_dtype(c['dtype'], device)
    model = GPT(GPTConfig(**ckpt['model_args']))
    load_model_state(model, ckpt['model'])
    model.eval().to(device)
    if not 0 <= c['slide'] <= model.config.block_size:
        raise ConfigError(f"slide={c['slide']} should be in 0..block_size ({model.config.block_size})")

    if c['seconds']:
        if 'sample_rate' not in meta:
            raise ConfigError("--seconds is for audio checkpoints; use --max_new_tokens")
        c['max_new_tokens'] = round(c['seconds'] * meta['sample_rate'])
    prompt = encode_prompt(c['start'], meta)
    idx = torch.tensor([prompt] * c['num_samples'], dtype=torch.long, device=device)
    g = torch.Generator(device=device).manual_seed(c['seed'])
    with torch.no_grad(), autocast_context(device, dtype):
        out = model.generate(idx, c['max_new_tokens'], temperature=c['temperature'],
                             top_k=c['top_k'] or None, generator=g, use_cache=c['cache'], slide=c['slide'])
    path = c['output']
    if not path and meta['tokenizer'] in ('mulaw', 'midi_events'):
        path = os.path.join(c['out_dir'], 'sample.wav' if meta['tokenizer'] == 'mulaw' else 'sample.mid')
    for i, row in enumerate(out.tolist()):
        written = write_output(row, meta, path, i if c['num_samples'] > 1 else None)
        if written:
            print(f"wrote {written}")


if __name__ == '__main__':
    try:
        main(sys.argv[1:])
    except ConfigError as e:
        sys.exit(f"error: {e}")

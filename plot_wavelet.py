"""
Draw a trained run's wavelet operation, one row per level (time scale):

  left:  the level's kernels, the weight each gives the token `lag` steps back: for a `learnable` run each
         coordinate's learned kernel against the Haar box 1/k it started from; for a `haar` run the
         boxes themselves (and for `ema`, its exponential kernels against the boxes of the same spans);
  right: for a prompt, one coordinate of that level along the tokens, entering the wavelet operation
         of block `layer` (the block's output) and leaving it (its causal moving average).

    python plot_wavelet.py --out_dir=out/quickstart                    # writes out/quickstart/wavelet.png
    python plot_wavelet.py --out_dir=out/quickstart --start="the function returns " --layer=3

The prompt is text or FILE:path, as sample.py's --start, at most block_size tokens; '' (the default)
takes the first block_size tokens of the run's validation split, so that every window fits in it.
The curves come from the model itself: the kernels from model.Wavelet.kernel(), the boxes from a
`haar` Wavelet of the same settings, and the coordinates from a hook on the block's Wavelet module
during one forward pass. Needs matplotlib. The figure goes into the run's folder unless --output
says otherwise; a file that exists is replaced only with --overwrite=True.
"""
import os
import sys
from dataclasses import dataclass, replace
from typing import NamedTuple

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
import torch

from checkpoints import load_checkpoint, load_model_state
from dataset import Dataset, tokenizer_for
from errors import ConfigError, main_guard
from model import GPTConfig, Wavelet
from outputs import check_figure, save_figure
from settings import parse_config
from system import build_model

FIGURE = 'wavelet.png'  # the default output, inside out_dir
ROMAN = 'I II III IV V VI VII VIII IX X XI XII XIII XIV XV XVI'.split()


@dataclass
class WaveletPlotConfig:
    out_dir: str = 'out'          # the run's folder, with its ckpt.pt (a run with wavelet haar, learnable or ema)
    start: str = ''               # the prompt: text, or FILE:path; '' takes the first block_size tokens of validation
    layer: int = 0                # the block whose wavelet operation is drawn: 0 .. n_layer-1, or -1 for the last
    output: str = ''              # .png, .pdf or .svg; '' is out_dir/wavelet.png
    overwrite: bool = False       # the output may replace a file that exists (never a checkpoint or a dataset's file)

    def __post_init__(self):
        if not self.out_dir:
            raise ValueError("out_dir='': give the run's folder, e.g. --out_dir=out/quickstart")


class Level(NamedTuple):
    """One level of the ladder: coordinates first .. last-1 of the residual stream average over k tokens."""
    k: int
    first: int
    last: int
    box: np.ndarray       # (span,) the Haar box of this level: 1/k at lags 0 .. k-1, then 0
    kernels: np.ndarray   # (span, last - first) each coordinate's weights by lag, as the model computes them


def kernel_curves(model, layer):
    """Every level of block `layer`'s wavelet: its window, its coordinates, its box and its kernels."""
    wavelet = model.transformer.h[layer].wavelet
    haar = Wavelet(replace(model.config, wavelet='haar'))  # the project's own boxes, of these windows
    with torch.no_grad():
        kernel, box = wavelet.kernel().float(), haar.kernel().float()
    span = kernel.size(0)
    return [Level(k, a, b, box[:span, a].numpy(), kernel[:, a:b].numpy()) for a, b, k in wavelet.groups]


def residual_through_wavelet(model, layer, idx):
    """The residual stream of one sequence idx (1, T) entering block `layer`'s wavelet operation (the block's
    output) and leaving it: (before, after), each a (T, n_embd) float32 array, from one forward pass."""
    seen = {}

    def hook(module, args, output):
        seen['before'], seen['after'] = args[0], output
    handle = model.transformer.h[layer].wavelet.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(idx)
    finally:
        handle.remove()
    return seen['before'][0].float().numpy(), seen['after'][0].float().numpy()


def pick_layer(layer, config):
    """The block index that --layer names, checked: it must exist and have a wavelet operation."""
    n = config.n_layer
    if not -n <= layer < n:
        raise ConfigError(f"layer={layer}: the model has {n} blocks; give 0 .. {n - 1} (or -1 for the last)")
    index = layer % n
    if index == n - 1 and not config.wavelet_last:
        raise ConfigError(f"layer={layer}: the last block has no wavelet operation (wavelet_last=False); "
                          f"give 0 .. {n - 2}")
    return index


def prompt_tokens(c, ckpt):
    """The tokens drawn (a list) and a few words on where they came from."""
    T = ckpt['model_args']['block_size']
    if not c['start']:
        name = ckpt.get('config', {}).get('dataset') if isinstance(ckpt.get('config'), dict) else None
        if not isinstance(name, str):
            raise ConfigError(f"{c['out_dir']}/ckpt.pt names no dataset to take a validation window from; give a "
                              f"prompt with --start")
        data = Dataset(name, build=False)
        if data.size('val') < T:
            raise ConfigError(f"data/{name}'s validation split has fewer than block_size={T} tokens; give --start")
        ids = data.batch('val', np.array([0]), T)[0][0]
        return [int(i) for i in ids], f"the first {T} tokens of data/{name}'s validation split"
    ids = tokenizer_for(ckpt['meta']).prompt(c['start'])
    if len(ids) > T:
        raise ConfigError(f"the prompt is {len(ids)} tokens, longer than the model's block_size={T}; shorten it")
    what = c['start'] if not c['start'].startswith('FILE:') else c['start'][5:]
    return ids, f"{len(ids)} tokens of {what!r}" if len(what) <= 60 else f"{len(ids)} tokens of {what[:57]!r}..."


def import_pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plot_wavelet.py draws with matplotlib, which is not installed: pip install matplotlib")
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def draw(levels, before, after, mode, layer, source, title, token_text=None):
    """The figure: one row per level, the kernels on the left, one coordinate before and after on the right.
    token_text: each token as text, written under the positions of a short prompt (or None)."""
    plt = import_pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(len(levels), 2, figsize=(11, 1.5 * len(levels) + 1.3), squeeze=False,
                             gridspec_kw=dict(width_ratios=(1, 2)))
    tokens = np.arange(len(before))
    for row, (level, (left, right)) in enumerate(zip(levels, axes)):
        name = f"level {ROMAN[row] if row < len(ROMAN) else row + 1}, k = {level.k}"
        # left: the kernels against the box, over the lags the level reaches (and a little more)
        reach = min(len(level.box), max(2 * level.k, 4))
        lag = np.arange(reach)
        small = level.k <= 8
        if mode == 'haar':
            left.plot(lag, level.box[:reach], color='k', marker='o' if small else None, markersize=3,
                      drawstyle='steps-mid', label='Haar box 1/k (fixed)')
        else:
            left.plot(lag, level.kernels[:reach], color='tab:blue', linewidth=0.8, alpha=0.6,
                      marker='.' if small else None, markersize=3)
            left.plot([], [], color='tab:blue', label=f"{'learned' if mode == 'learnable' else 'EMA'} kernels "
                                                       f"({level.last - level.first} coordinates)")
            left.plot(lag, level.box[:reach], color='k', linestyle='--', linewidth=1.2, drawstyle='steps-mid',
                      label='Haar box 1/k' + (' (the start)' if mode == 'learnable' else ''))
        left.axhline(0, color='0.7', linewidth=0.5)
        left.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 4, 5, 10]))
        left.set_title(f"{name}: coordinates {level.first}..{level.last - 1}", fontsize=9, loc='left')
        left.set_ylabel('weight')
        # right: the coordinate of this level whose input varies most, before and after
        i = level.first + int(np.argmax(before[:, level.first:level.last].std(0)))
        right.plot(tokens, before[:, i], color='0.55', linewidth=0.9, label='before: the block\'s output')
        right.plot(tokens, after[:, i], color='tab:red', linewidth=1.4, label=f'after: mean of the last {level.k} tokens'
                   if mode == 'haar' else 'after: the kernel applied')
        right.set_title(f"coordinate {i} ({name}) along the prompt", fontsize=9, loc='left')
        right.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 4, 5, 10]))
        if token_text is not None and len(token_text) <= 48:
            right.set_xticks(tokens, [t if t.strip() else '_' for t in token_text], fontsize=8, family='monospace')
        right.set_ylabel('value')
        if row == 0:
            left.legend(fontsize=8, loc='upper right')
            right.legend(fontsize=8, loc='upper right', ncol=2)
    axes[-1, 0].set_xlabel('lag: tokens back from the current one (0 = the current token)')
    shown = token_text is not None and len(token_text) <= 48
    axes[-1, 1].set_xlabel(f"token {'(_ is a space)' if shown else 'position'} in the prompt ({source})")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def main(argv):
    c, _ = parse_config(argv, (WaveletPlotConfig,), __doc__)
    output = c['output'] or os.path.join(c['out_dir'], FIGURE)
    import_pyplot()  # now, not after the work
    check_figure(output, c['overwrite'])
    ckpt_path = os.path.join(c['out_dir'], 'ckpt.pt')
    ckpt = load_checkpoint(ckpt_path)
    config = GPTConfig(**ckpt['model_args'])
    if config.wavelet == 'none':
        raise ConfigError(f"{ckpt_path} is a run with wavelet='none': it has no wavelet operation to draw; give a "
                          f"haar, learnable or ema run's out_dir")
    layer = pick_layer(c['layer'], config)
    ids, source = prompt_tokens(c, ckpt)
    model = build_model(config)
    load_model_state(model, ckpt['model'], ckpt_path)
    model.eval()
    levels = kernel_curves(model, layer)
    before, after = residual_through_wavelet(model, layer, torch.tensor([ids], dtype=torch.long))
    n_mod = levels[-1].last
    title = (f"{c['out_dir']}: the wavelet operation of block {layer} ({config.wavelet}, {len(levels)} levels, "
             f"coordinates 0..{n_mod - 1} of {config.n_embd} averaged, {n_mod}..{config.n_embd - 1} unchanged)")
    if config.wavelet == 'haar':
        title += "\na haar run: its kernels are the fixed Haar boxes, nothing is learned"
    elif config.wavelet == 'learnable':
        title += f"\nlearned kernels at iter {ckpt.get('iter_num', '?')}, each started as the Haar box of its level"
    tok, token_text = tokenizer_for(ckpt['meta']), None
    if tok.name in ('chars', 'bytes'):  # text that needs no library or model to read: shown, on one line
        text = tok.decode(ids).replace('\n', ' ')
        title += f'\nthe prompt: "{text if len(text) <= 130 else text[:127] + "..."}"'
        token_text = [tok.decode([i]) for i in ids]
    fig = draw(levels, before, after, config.wavelet, layer, source, title, token_text)
    print(f"wrote {save_figure(fig, output, dpi=80)}")


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

r"""
Draw the next-token distributions that trained models predict at the same validation positions,
side by side: a linear head against Fourier heads, on a dataset of ordered bins (audio levels).

    python plot_pmfs.py --runs=results/fourier/runs/none/seed1,results/fourier/runs/head=fourier+fourier_freqs=16/seed1 \
        --output=results/fourier/pmfs.png

Each run is an out_dir holding ckpt.pt (all of one dataset). The positions are the last of `rows`
evenly spaced validation windows of block_size tokens. Also prints each model's mean PMF smoothness
there (metrics.pmf_smoothness). Needs matplotlib.
"""
import os
import sys
from dataclasses import dataclass

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
import torch

from checkpoints import load_checkpoint, load_model_state, run_names
from errors import ConfigError, main_guard
from metrics import pmf_smoothness
from settings import parse_config
from dataset import Dataset, tokenizer_for
from checks import within
from model import GPT, GPTConfig
from outputs import check_figure, save_figure


MAX_ROWS = 24


@dataclass
class PlotConfig:
    runs: str = ''                # comma-separated out_dirs with a ckpt.pt each
    rows: int = 4                 # positions drawn, one panel each (1 to 24)
    output: str = 'pmfs.png'      # .png, .pdf or .svg
    overwrite: bool = False       # the output may replace a file that exists (never a checkpoint or a dataset's file)

    def __post_init__(self):
        within(self, 'rows', 1, MAX_ROWS)  # a panel each: more would make a figure no screen shows, slowly
        if not self.runs:
            raise ValueError("runs='': give --runs=out_dir1,out_dir2")


def predictions(ckpt, windows):
    """The model's PMF over its dataset's ordered bins at the last position of each window."""
    model = GPT(GPTConfig(**ckpt['model_args']))
    load_model_state(model, ckpt['model'])
    with torch.no_grad():
        logits, _ = model.eval()(torch.from_numpy(windows.astype(np.int64)))
    bins = tokenizer_for(ckpt['meta']).ordered
    p = torch.softmax(logits[:, -1].float(), -1)[:, bins.start:bins.stop]
    return (p / p.sum(-1, keepdim=True)).numpy()



def main(argv):
    c, _ = parse_config(argv, (PlotConfig,), __doc__)
    check_figure(c['output'], c['overwrite'])  # now, not after the work
    runs = c['runs'].split(',')
    ckpts = {run: load_checkpoint(os.path.join(run, 'ckpt.pt')) for run in runs}
    for run, ck in ckpts.items():
        if not isinstance(ck.get('config'), dict) or not isinstance(ck['config'].get('dataset'), str):
            raise ConfigError(f"{run}/ckpt.pt names no dataset (weights only?); give out_dirs that train.py wrote")
    first = next(iter(ckpts.values()))
    if tokenizer_for(first['meta']).ordered is None:
        raise ConfigError(f"{runs[0]} was trained on {first['meta']['tokenizer']} tokens, not ordered bins")
    if any(ck['config']['dataset'] != first['config']['dataset'] for ck in ckpts.values()):
        raise ConfigError("the runs were trained on different datasets; give runs of one dataset")
    data, T = Dataset(first['config']['dataset'], build=False), first['model_args']['block_size']
    starts = data.eval_offsets('val', T, c['rows'])
    windows, targets = data.batch('val', starts, T)
    pmfs = {run: predictions(ck, windows) for run, ck in ckpts.items()}
    for run, p in pmfs.items():
        print(f"{run}: mean smoothness {pmf_smoothness(p):.4f} over {len(p)} positions")
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("drawing needs matplotlib: pip install matplotlib")
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(c['rows'], 1, figsize=(9, 2.2 * c['rows']), sharex=True)
    names = run_names(runs)
    axes = np.atleast_1d(axes)
    for row, ax in enumerate(axes):
        for run, p in pmfs.items():
            ax.plot(p[row], label=names[run], linewidth=1)
        ax.axvline(int(targets[row, -1]), color='k', linewidth=0.8, linestyle=':')  # what came next
        ax.set_ylabel('probability')
        ax.set_title(f"validation position {starts[row] + T}", fontsize=8, loc='left')
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel('mu-law level (dotted: the true next sample)')
    fig.suptitle('predicted next-sample distributions at the same validation positions')
    fig.tight_layout()
    print(f"wrote {save_figure(fig, c['output'])}")


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

"""What several test files share: fixtures for running the scripts and for tiny datasets.
Run the suite: python -m pytest -q"""
import os
import subprocess
import sys

import numpy as np
import pytest

from dataset import write_dataset

REPO = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def repo():
    return REPO


def _run_script(args, cwd, env=None, **kw):
    """python <a script of this repo, e.g. 'train.py'> args... in cwd (or python -m module args...),
    with this project importable and one thread; the CompletedProcess."""
    e = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    e.update(env or {})
    args = list(args) if args[0] == '-m' else [os.path.join(REPO, args[0])] + list(args[1:])
    return subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True, env=e, timeout=300, **kw)


@pytest.fixture
def run_script():
    """run_script(['train.py', '--x=1'], cwd): a script of this project in a subprocess."""
    return _run_script


def _make_text_dataset(root, name='tiny', n=40_000, dtype='uint8', vocab=27, seed=0):
    """data/<name> under root: with uint8, a learnable toy corpus of words; else random ids."""
    rng = np.random.default_rng(seed)
    if dtype == 'uint8':
        words = ['the ', 'cat ', 'sat ', 'on ', 'a ', 'mat ', 'and ', 'dog ', 'ran ']
        text = ''.join(rng.choice(words, size=n // 3))[:n]
        ids = np.array([' abcdefghijklmnopqrstuvwxyz'.index(ch) for ch in text])
        meta = dict(vocab_size=27, dtype='uint8', modality='text', tokenizer='chars', itos=' abcdefghijklmnopqrstuvwxyz')
    else:
        ids = rng.integers(0, vocab, size=n)
        meta = dict(vocab_size=vocab, dtype=dtype, modality='music', tokenizer='midi_events')
    split = int(0.9 * len(ids))
    write_dataset(os.path.join(root, 'data', name), {'train': ids[:split], 'val': ids[split:]},
                  dict(meta, prepare=f'python prepare/{name}.py'))
    return os.path.join(root, 'data', name)


@pytest.fixture
def text_dataset():
    """text_dataset(root, name='tiny', ...): write a tiny dataset under root/data and return its folder."""
    return _make_text_dataset


@pytest.fixture
def train_config(tmp_path):
    """train_config(**kw): train.py's settings for a tiny, fast run on data/tiny under tmp_path."""
    from common import TRAIN, parse_config

    def make(**kw):
        c, _ = parse_config([], TRAIN)
        c.update(out_dir=str(tmp_path / 'out'), dataset='tiny', n_layer=2, n_head=2, n_embd=32, block_size=32,
                 batch_size=8, max_iters=8, eval_interval=4, eval_iters=2, warmup_iters=2, learning_rate=3e-3,
                 device='cpu', wavelet='haar')
        c.update(kw)
        return c
    return make

"""What several test files share: fixtures for running the scripts and for tiny datasets.
Run the suite: python -m pytest -q"""
import contextlib
import io
import json
import os
import runpy
import signal
import subprocess
import sys
import traceback

import numpy as np
import pytest

from dataset import write_dataset

REPO = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def repo():
    return REPO


def _run_script(args, cwd, env=None, **kw):
    """python <a script of this repo, e.g. 'train.py'> args... in cwd (or python -m module / -c code args...),
    with this project importable and one thread; the CompletedProcess."""
    e = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    e.update(env or {})
    args = list(args) if args[0] in ('-m', '-c') else [os.path.join(REPO, args[0])] + list(args[1:])
    return subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True, env=e, timeout=300, **kw)


@pytest.fixture
def run_script():
    """run_script(['train.py', '--x=1'], cwd): a script of this project in a subprocess."""
    return _run_script


def _run_as_main(argv):
    """argv ([script, args...]) run as `python script args...` would run it, but in this process:
    (exit code, stdout, stderr), an uncaught exception printed as the interpreter prints it."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [os.path.join(REPO, argv[0])] + list(argv[1:])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(sys.argv[0], run_name='__main__')
        except SystemExit as e:  # sys.exit('message') prints the message and exits 1
            code = e.code if isinstance(e.code, int) or e.code is None else print(e.code, file=sys.stderr) or 1
        except BaseException:
            traceback.print_exc()
            code = 1
    for s in (signal.SIGINT, signal.SIGTERM):  # a script's handlers do not outlive it
        signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
    return code or 0, out.getvalue(), err.getvalue()


def _run_many(cases_file):
    """The child of run_scripts: the command lines in cases_file (JSON), results written back into it."""
    with open(cases_file) as f:
        cases = json.load(f)
    results = [_run_as_main(argv) for argv in cases]
    with open(cases_file, 'w') as f:
        json.dump(results, f)


@pytest.fixture
def run_scripts(tmp_path):
    """run_scripts([[script, args...], ...], cwd): several command lines of this project in one Python
    process, so that the slow imports are paid once; each runs as `python script args...` would (its
    __main__ block, its error path). [(exit code, stdout, stderr)], one per command line."""
    def run(cases, cwd, env=None):
        cases_file = tmp_path / f'cases-{len(os.listdir(tmp_path))}.json'
        cases_file.write_text(json.dumps([list(map(str, c)) for c in cases]))
        r = _run_script(['-c', f'import conftest; conftest._run_many({str(cases_file)!r})'], cwd, env)
        assert r.returncode == 0, r.stderr
        return [tuple(x) for x in json.loads(cases_file.read_text())]
    return run


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
    from settings import TRAIN, parse_config

    def make(**kw):
        c, _ = parse_config([], TRAIN)
        c.update(out_dir=str(tmp_path / 'out'), dataset='tiny', n_layer=2, n_head=2, n_embd=32, block_size=32,
                 batch_size=8, max_iters=8, eval_interval=4, eval_iters=2, warmup_iters=2, learning_rate=3e-3,
                 device='cpu', wavelet='haar')
        c.update(kw)
        return c
    return make

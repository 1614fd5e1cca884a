"""
Every expected failure, tried as a user would: through the real command lines (train.py, sample.py,
compare.py, bench.py, decode.py, prepare/*.py). For each: a non-zero exit, a last line of stderr
that names the problem ("error: ..."), no traceback, and every file that existed before is byte for
byte unchanged (nothing new is left behind either). Then kill -9 and Ctrl-C at random points of
training and of a prepare script: afterwards a complete checkpoint and a complete dataset exist.
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import pytest
import torch

from checkpoints import load_checkpoint
from settings import TRAIN, parse_config
from conftest import REPO, _make_text_dataset
from dataset import read_meta, write_dataset
from prepare import common as prepare_common
from tokens.mulaw import MuLaw
from train import train

TINY = ['--dataset=tiny', '--n_layer=1', '--n_head=2', '--n_embd=16', '--block_size=16', '--batch_size=4',
        '--eval_interval=1', '--eval_iters=1', '--max_iters=1', '--device=cpu']
SAMPLE = ['sample.py', '--max_new_tokens=3', '--device=cpu']


def train_here(root, argv):
    """train.py's argv, run in this process (no start-up time) from the folder root."""
    cwd = os.getcwd()
    os.chdir(root)  # train.py reads data/<dataset> from where it runs
    try:
        return train(*parse_config(argv, TRAIN))
    finally:
        os.chdir(cwd)


def tiny_run(root, out_dir, dataset='tiny'):
    """A one-step checkpoint at root/out_dir."""
    train_here(root, TINY + [f'--out_dir={out_dir}', f'--dataset={dataset}'])


def wav_header(path, frames=b''):
    with wave.open(str(path), 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(frames)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A folder as a user has it: datasets (text, audio), one-step checkpoints of each, prompt files,
    config files, and checkpoints damaged in every way the scripts must refuse."""
    root = tmp_path_factory.mktemp('world')
    _make_text_dataset(str(root))
    rng = np.random.default_rng(0)
    tones = rng.integers(0, 256, 6000)
    write_dataset(str(root / 'data' / 'tones'), {'train': tones[:5000], 'val': tones[5000:]},
                  dict(MuLaw.facts(), prepare='python prepare/youtubemix.py'))
    tiny_run(root, 'out/text')
    tiny_run(root, 'out/audio', dataset='tones')
    for d in ('p', 'cfg', 'results'):
        (root / d).mkdir()
    wav_header(root / 'p' / 'tone.wav', np.zeros(1600, '<i2').tobytes())
    wav_header(root / 'p' / 'header.wav')
    (root / 'p' / 'truncated.wav').write_bytes((root / 'p' / 'tone.wav').read_bytes()[:1000])
    (root / 'p' / 'empty.wav').write_bytes(b'')
    (root / 'p' / 'empty.mid').write_bytes(b'')
    (root / 'p' / 'header.mid').write_bytes(b'MThd\x00\x00\x00\x06\x00\x01\x00\x00\x01\xe0')
    (root / 'p' / 'text.txt').write_text('hello there')
    (root / 'p' / 'punctuation.txt').write_text(' !!! ... ')
    (root / 'cfg' / 'syntax.py').write_text('n_layer = = 3\n')
    (root / 'cfg' / 'undefined.py').write_text('n_layer = foo\n')
    damage_checkpoints(root)
    damage_datasets(root)
    return root


class Foreign:
    """An object in a pickle: torch.load(weights_only=True) refuses it (and must not advise otherwise)."""


def damage_checkpoints(root):
    """out/<kind>/ckpt.pt for each kind of damage, all made from the text run's checkpoint."""
    good = (root / 'out' / 'text' / 'ckpt.pt').read_bytes()
    ckpt = torch.load(root / 'out' / 'text' / 'ckpt.pt', weights_only=True)
    made = {'truncated': good[:len(good) // 2], 'random': np.random.default_rng(1).bytes(5000), 'empty': b''}
    for name, data in made.items():
        (root / 'out' / name).mkdir()
        (root / 'out' / name / 'ckpt.pt').write_bytes(data)
    saved = {'foreign': {'weights': torch.zeros(3)}, 'pickled': dict(ckpt, extra=Foreign()),
             'weights': dict(ckpt, model={'lm_head.weight': torch.zeros(2)}), 'meta': dict(ckpt, meta={'dtype': 5}),
             'state': dict(ckpt, optimizer={'state': 'x'}),
             'grown': dict(ckpt, config=dict(ckpt['config'], dataset='grown'))}
    for name, obj in saved.items():
        (root / 'out' / name).mkdir()
        torch.save(obj, root / 'out' / name / 'ckpt.pt')
    (root / 'out' / 'folder' / 'ckpt.pt').mkdir(parents=True)


def rewrite_meta(data_dir, **fields):
    path = os.path.join(data_dir, 'meta.json')
    with open(path) as f:
        meta = json.load(f)
    with open(path, 'w') as f:
        json.dump(dict(meta, **fields), f)


def damage_datasets(root):
    """data/<kind> for each kind of damage; data/grown: the dataset of out/grown, rebuilt with a larger vocabulary."""
    for name, fields in [('vocab_text', {'vocab_size': '27'}), ('tokens_list', {'tokens': [1, 2]}),
                         ('itos_int', {'itos': 5})]:
        rewrite_meta(_make_text_dataset(str(root), name=name), **fields)
    zero_val = _make_text_dataset(str(root), name='zero_val')
    rewrite_meta(zero_val, tokens=dict(read_meta(zero_val)['tokens'], val=0))
    open(os.path.join(zero_val, 'val.bin'), 'wb').close()
    _make_text_dataset(str(root), name='grown', dtype='uint16', vocab=40)


def digests(root):
    """{path: sha256} of every file under root."""
    out = {}
    for folder, _, files in os.walk(root):
        for f in files:
            path = os.path.join(folder, f)
            with open(path, 'rb') as fh:
                out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def assert_one_line_failures(run_scripts, root, cases):
    """Run cases [(argv, words)] in root: each exits 1 with 'error: ...<words>...' as the last line of stderr,
    no traceback, and leaves every file as it was (and no new one)."""
    before = digests(root)
    results = run_scripts([argv for argv, _ in cases], root)
    assert not any('weights_only' in err for _, _, err in results)  # torch's advice to load a file unsafely
    problems = []
    for (argv, words), (code, out, err) in zip(cases, results):
        last = (err.strip().splitlines() or [''])[-1]
        if code != 1 or 'Traceback' in err or not last.startswith('error: ') or words.lower() not in last.lower():
            problems.append(f"{' '.join(argv)}\n    exit {code}, wanted {words!r}; stderr: {err[-600:]!r}")
    assert not problems, '\n'.join(problems)
    assert digests(root) == before


# ---------------------------------------------------------------- one-line errors, class by class

def test_bad_settings_and_config_files(world, run_scripts):
    out = '--out_dir=new/run'
    (world / 'cfg' / 'imports.py').write_text('import math\nfrom math import sqrt\nn_layer = int(sqrt(4))\nn_layers = 3\n')
    cases = [(['train.py', 'cfg/syntax.py'], 'cfg/syntax.py, line 1: invalid syntax'),
             (['train.py', 'cfg/imports.py'], "unknown setting 'n_layers'"),  # a module imported is no setting
             (['train.py', out] + TINY + ['--threads=100000'], 'threads=100000: this machine has'),
             (SAMPLE + ['--out_dir=out/text', f'--threads={os.cpu_count() + 1}'], 'CPU cores; use 1 to'),
             (['bench.py', '--threads=5000'], 'threads=5000'),
             (['train.py', 'cfg/undefined.py'], "name 'foo' is not defined"),
             (['train.py', 'cfg'], 'cfg is a folder'),
             (['train.py', 'cfg/missing.py'], 'does not exist'),
             (['train.py', '--n_layers=2'], 'did you mean n_layer'),
             (['train.py', '--n_layer=2.5'], 'should be an int'),
             (['train.py', '--device=cpu', '--n_layer'], 'write --n_layer=value')]
    for bad in ('batch_size=0', 'batch_size=-1', 'eval_interval=0', 'eval_iters=0', 'gradient_accumulation_steps=0',
                'n_head=0', 'max_iters=-1', 'seed=-1', 'dropout=1.0', 'beta2=1.0', 'min_lr=1.0'):
        cases.append((['train.py', out] + TINY + [f'--{bad}'], bad.split('=')[0] + '='))
    cases += [(['train.py', out] + TINY + ['--learning_rate=1e400'], 'learning_rate=inf: use a finite number'),
              (['train.py', out] + TINY + ['--device=cuda:99'], 'CUDA'),
              (['train.py', out] + TINY + ['--device=nonsense'], "device='nonsense' is not a device"),
              (['train.py', out] + TINY + ['--dtype=float16'], 'float16 is for GPUs'),
              (SAMPLE + ['--out_dir=out/text', '--device=cuda:99'], 'CUDA'),
              (['bench.py', '--device=nonsense'], 'is not a device'),
              (['bench.py', '--batch_size=0'], 'batch_size=0'),
              (['decode.py'], '--data=data/<name>'),
              (['decode.py', '--data=data/tiny'], 'decodes Equal-Info datasets'),
              (['decode.py', '--data=data/tiny', '--output=missing/x.txt'], 'does not exist')]
    assert_one_line_failures(run_scripts, world, cases)


def test_bad_datasets(world, run_scripts):
    cases = [(['train.py', '--out_dir=new/run'] + TINY + [f'--dataset={name}'], words) for name, words in [
        ('missing', 'meta.json missing'), ('zero_val', 'holds no tokens'), ('vocab_text', "vocab_size '27'"),
        ('tokens_list', 'tokens [1, 2]'), ('itos_int', 'itos=5')]]
    cases.append((['train.py', '--out_dir=new/run'] + TINY + ['--block_size=5000'], 'needs more than'))
    assert_one_line_failures(run_scripts, world, cases)


def test_an_optional_split_that_is_missing_is_left_out(tmp_path):
    d = _make_text_dataset(str(tmp_path))
    rewrite_meta(d, tokens=dict(read_meta(d)['tokens'], test=100))  # listed, but test.bin is not there
    assert 'test' not in read_meta(d)['tokens']
    tiny_run(tmp_path, 'run')
    assert load_checkpoint(str(tmp_path / 'run' / 'ckpt.pt'))['iter_num'] == 1


def test_damaged_checkpoints_in_train_and_sample(world, run_scripts):
    """Truncated, random, empty, another program's, pickled objects, a folder, weights or a training state that do
    not fit, dataset facts damaged: refused with one line, by resume, by init_from and by sample.py."""
    unreadable = {'truncated': 'not a readable checkpoint', 'random': 'not a readable checkpoint',
                  'empty': 'not a readable checkpoint', 'pickled': 'not plain weights',
                  'foreign': 'not a checkpoint of this project', 'meta': 'not a checkpoint of this project',
                  'folder': 'is a folder', 'weights': 'do not fit'}
    cases = []
    for name, words in unreadable.items():
        cases += [(['train.py', f'--out_dir=out/{name}', '--init_from=resume'] + TINY, words),
                  (['train.py', '--out_dir=new/run', f'--init_from=out/{name}/ckpt.pt'] + TINY,
                   'does not fit this model' if name == 'weights' else words),
                  (SAMPLE + [f'--out_dir=out/{name}'], words)]
    cases += [(['train.py', '--out_dir=out/state', '--init_from=resume'] + TINY, 'damaged training state'),
              (['train.py', '--out_dir=out/grown', '--init_from=resume', '--dataset=grown', '--device=cpu'],
               'has a vocabulary of 27 tokens, but data/grown now has 40'),
              (['train.py', '--out_dir=new/none', '--init_from=resume'] + TINY, 'does not exist'),
              (SAMPLE + ['--out_dir=new/none'], 'no checkpoint at')]
    assert_one_line_failures(run_scripts, world, cases)


def test_work_is_never_lost(world, run_scripts):
    """A new run never replaces a checkpoint without --overwrite=True; an out_dir that cannot be written, or that
    another run holds, is refused before any training."""
    fcntl = pytest.importorskip('fcntl')
    cases = [(['train.py', '--out_dir=out/text'] + TINY, '--overwrite=True'),
             (['train.py', '--out_dir=p/text.txt/run'] + TINY, 'cannot write in out_dir'),
             (['train.py', '--out_dir=out/audio', '--dataset=tones', '--init_from=resume', '--max_iters=3', '--device=cpu'],
              "out_dir='out/audio' is in use by the run with pid 4242")]
    with open(world / 'out' / 'audio' / 'train.lock', 'w') as lock:  # as a run that is still going holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write('the run with pid 4242')
        lock.flush()
        assert_one_line_failures(run_scripts, world, cases)
    os.remove(world / 'out' / 'audio' / 'train.lock')


def test_bad_sample_requests(world, run_scripts):
    text, audio = SAMPLE + ['--out_dir=out/text'], SAMPLE + ['--out_dir=out/audio']
    cases = [(text + ['--start=FILE:p/tone.wav'], 'is not UTF-8 text'),
             (text + ['--start=FILE:p/header.mid'], 'is not UTF-8 text'),
             (text + ['--start=FILE:p/empty.mid'], 'is empty'),
             (text + ['--start=FILE:p'], 'is a folder'),
             (text + ['--start=FILE:p/missing.txt'], 'does not exist'),
             (text + ['--seconds=1.0'], '--seconds is for audio'),
             (text + ['--output=missing/x.txt'], 'does not exist'),
             (text + ['--output=p'], 'it is a folder'),
             (audio + ['--start=FILE:p/text.txt'], 'not a readable WAV file'),
             (audio + ['--start=hello'], 'an audio model takes no text prompt'),
             (text + ['--start=Hello, World 1984!'], "has no tokens for: '!' ','; its alphabet is a-z and space"),
             (text + ['--start=café naïve'], "has no tokens for: 'é' 'ï'"),
             (audio + ['--start=FILE:p/header.wav'], 'gives no tokens'),
             (audio + ['--start=FILE:p/truncated.wav'], 'truncated'),
             (audio + ['--start=FILE:p/empty.wav'], 'is empty'),
             (audio + ['--seconds=1e12'], 'not enough memory')]
    for bad in ('seconds=-1', 'max_new_tokens=-1', 'top_k=-1', 'num_samples=0', 'temperature=-1', 'slide=100'):
        cases.append((text + [f'--{bad}'], bad.split('=')[0] + '='))
    assert_one_line_failures(run_scripts, world, cases)


def test_bad_comparisons_fail_before_the_first_run(world, run_scripts):
    """Every variant is checked before the baseline trains; a damaged run log is one line, also on --replot."""
    base = ['compare.py', '--results=results/new'] + TINY
    cases = [(base + ['--seeds=a'], "seeds='a'"),
             (base + ['--seeds=1,1'], 'distinct'),
             (base + ['--variants=none,haar+seed=3'], 'sets seed'),
             (base + ['--variants=none,out_dir=x'], 'sets out_dir'),
             (base + ['--variants=none,haar+n_head=0'], 'n_head=0'),
             (base + ['--variants=none,nope=1'], "unknown setting 'nope'"),
             (base + ['--variants=none,x:init_from=y'], 'not the label of an earlier variant')]
    log = world / 'results' / 'old' / 'runs' / 'none' / 'seed1' / 'log.jsonl'
    log.parent.mkdir(parents=True)
    log.write_text('{"config": {"dataset": "tiny"}}\n{"iter": 0, "val_lo')  # a run killed mid-write
    cases += [(['compare.py', '--results=results/old', '--variants=none', '--seeds=1'] + TINY, 'log.jsonl is damaged'),
              (['compare.py', '--results=results/old', '--replot=True'], 'log.jsonl is damaged')]
    assert_one_line_failures(run_scripts, world, cases)


def test_bad_prepare_inputs(world, run_scripts):
    (world / 'midi').mkdir()
    (world / 'midi' / 'a.mid').write_bytes(b'')
    (world / 'wavs').mkdir()
    (world / 'wavs' / 'a.wav').write_bytes((world / 'p' / 'truncated.wav').read_bytes())
    (world / 'wavs' / 'b.wav').write_bytes(b'')
    out, tones = ['--out', 'new/data'], ['--out', 'data/tones']  # a dataset of their kind there stays as it is
    cases = [(['prepare/text8.py', '--input', 'p/missing.txt'] + out, 'does not exist'),
             (['prepare/text8.py', '--input', 'p/punctuation.txt'] + out, 'no letters'),
             (['prepare/youtubemix.py', '--input', 'p/text.txt'] + tones, 'p/text.txt is not a .wav file'),
             (['prepare/youtubemix.py', '--input', 'wavs'] + tones, 'truncated'),
             (['prepare/maestro.py', '--input', 'midi', '--workers=1'] + out, 'empty file'),
             (['prepare/maestro.py', '--input', 'p/missing.zip', '--workers=1'] + out, 'does not exist')]
    assert_one_line_failures(run_scripts, world, cases)


# ---------------------------------------------------------------- a full disk, downloads

def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_partial_file(world, tmp_path):
    resource = pytest.importorskip('resource')
    run = tmp_path / 'run'
    run.mkdir()
    for f in ('ckpt.pt', 'log.jsonl'):
        (run / f).write_bytes((world / 'out' / 'text' / f).read_bytes())
    before = (run / 'ckpt.pt').read_bytes()

    def small_disk():  # no file may grow beyond half a checkpoint: as a disk that fills up
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, len(before) // 2))
    r = script(['train.py', f'--out_dir={run}', '--init_from=resume'] + TINY[:-2] + ['--max_iters=3', '--device=cpu'],
               world, preexec_fn=small_disk)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and 'Traceback' not in r.stderr and last.startswith('error: could not write'), r.stderr
    assert (run / 'ckpt.pt').read_bytes() == before and not list(run.glob('*.tmp'))


def test_downloads_are_checked_against_the_published_size_and_sha256(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_common.time, 'sleep', lambda s: None)
    published = tmp_path / 'published.zip'
    published.write_bytes(b'text8 ' * 1000)
    sha = hashlib.sha256(published.read_bytes()).hexdigest()
    missing, url = (tmp_path / 'missing.zip').as_uri(), published.as_uri()
    dest = str(tmp_path / 'cache' / 'f.zip')
    # the first mirror fails (as https on a host without it would): the next one is used
    assert prepare_common.download([missing, url], dest, 6000, sha) == dest
    assert open(dest, 'rb').read() == published.read_bytes()
    with open(dest, 'r+b') as f:  # a cached copy that was damaged since: downloaded again
        f.write(b'X')
    assert prepare_common.download(url, dest, sha256=sha) == dest and open(dest, 'rb').read()[:1] == b't'
    for size, digest in ((6001, None), (None, '0' * 64)):  # not the published file: refused, nothing kept
        with pytest.raises(prepare_common.DatasetError, match='not the published one.*--input'):
            prepare_common.download(url, str(tmp_path / 'other.zip'), size, digest)
    assert sorted(os.listdir(tmp_path)) == ['cache', 'published.zip'] and os.listdir(tmp_path / 'cache') == ['f.zip']


# ---------------------------------------------------------------- Ctrl-C and kill -9

def script(args, cwd, **kw):
    """python <script of this repo> args, in cwd; the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, os.path.join(REPO, args[0])] + args[1:], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, **kw)


def start(args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, os.path.join(REPO, args[0])] + args[1:], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def has_loaded(pid, library, script=''):
    """Whether the process runs `script` (not the test's own fork of itself, which has every library already: a
    process not started yet) and has mapped a shared library whose path contains `library` (so it is importing it)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            if script.encode() not in f.read():
                return False
        with open(f'/proc/{pid}/maps') as f:
            return library in f.read()
    except FileNotFoundError:  # it has ended
        return True


@pytest.mark.skipif(not os.path.exists('/proc/self/maps'), reason='needs /proc to see a process import')
@pytest.mark.parametrize('argv,library', [(['train.py'], 'libtorch'), (['bench.py'], 'libtorch'),
                                          (['sample.py', '--out_dir=out/text', '--max_new_tokens=100000'], 'libtorch'),
                                          (['compare.py', '--variants=none', '--seeds=1'], 'numpy'),
                                          (['prepare/text8.py', '--input', 'p/many.txt', '--out', 'new/text'], 'numpy')])
def test_ctrl_c_during_the_imports_is_quiet(world, argv, library):
    """Ctrl-C as soon as the process loads its first large library (all but the first few milliseconds of
    Python's own start-up are after the scripts' quiet handler): exit 130 and one line, no traceback."""
    (world / 'p' / 'many.txt').write_text('a few words ' * 100_000)  # work enough to outlast the imports
    p = start(argv, world)
    wait_until(lambda: has_loaded(p.pid, library, argv[0]), timeout=60)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and 'Traceback' not in err and err.strip() == 'interrupted (SIGINT)', err


def test_help_names_the_file_of_each_group_of_settings(world, run_scripts):
    (code, out, _), = run_scripts([['sample.py', '--help']], world)
    assert code == 0 and 'SampleConfig (sample.py)' in out and '__main__' not in out


def test_ctrl_c_while_a_config_file_runs_is_an_interrupt_not_a_config_error(tmp_path):
    (tmp_path / 'slow.py').write_text("import time\nopen('started', 'w').close()\ntime.sleep(60)\nn_layer = 2\n")
    p = start(['train.py', 'slow.py'], tmp_path)
    wait_until(lambda: (tmp_path / 'started').exists(), timeout=60)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and 'error' not in err and 'Traceback' not in err, err


def test_a_signal_while_the_interpreter_shuts_down_is_exit_130_without_a_traceback(tmp_path):
    """As bench.py --mode=generate stopped by SIGTERM once its work was done, while Python joined its threads."""
    code = ("import threading, time\nfrom errors import main_guard, quiet_interrupts\nquiet_interrupts()\n"
            "def main():\n    threading.Thread(target=time.sleep, args=(30,)).start()\n    open('done', 'w').close()\n"
            "main_guard(main)\n")
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.Popen([sys.executable, '-c', code], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: (tmp_path / 'done').exists(), timeout=60)
    time.sleep(0.5)  # main has returned: the interpreter waits for the thread
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130 and 'Exception ignored' not in err and 'Traceback' not in err, err


def wait_until(condition, timeout=120):
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.02)


def test_kill_9_and_ctrl_c_at_random_points_of_training_leave_a_resumable_checkpoint(world, tmp_path):
    """A checkpoint at every step, and the run stopped at random moments, by kill -9 (from its start: during
    start-up, a step, an evaluation or a checkpoint write) or Ctrl-C (once it trains: it saves and exits 130):
    afterwards ckpt.pt always loads, never goes back, and the run goes on from it to the end."""
    rng = random.Random(14)
    ckpt, args = tmp_path / 'out' / 'ckpt.pt', ['train.py', '--out_dir=out', '--dataset=tiny'] + TINY[1:-2] + [
        '--max_iters=100000', '--device=cpu']
    (tmp_path / 'data').symlink_to(world / 'data')
    iter_num = 0
    for sig in [signal.SIGINT, signal.SIGKILL, signal.SIGINT, signal.SIGKILL]:
        saved_at = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        p = start(args + ['--init_from=resume' if saved_at else '--overwrite=True'], tmp_path)
        if sig == signal.SIGINT or not saved_at:  # once this run has saved a checkpoint of its own
            wait_until(lambda: ckpt.exists() and ckpt.stat().st_mtime_ns != saved_at)
        time.sleep(rng.uniform(0.0, 1.0 if sig == signal.SIGINT else 3.0))
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        assert 'Traceback' not in err, err
        if sig == signal.SIGINT:
            assert p.returncode == 130 and 'SIGINT: saved' in err.strip().splitlines()[-1], err
        else:
            assert p.returncode == -9
        saved = load_checkpoint(str(ckpt))  # whole, whatever the moment
        assert saved['iter_num'] >= iter_num
        iter_num = saved['iter_num']
    train_here(tmp_path, args[1:-2] + [f'--max_iters={iter_num + 2}', '--device=cpu', '--init_from=resume'])  # to its end
    assert load_checkpoint(str(ckpt))['iter_num'] == iter_num + 2 and not list(ckpt.parent.glob('*.tmp'))


def test_kill_9_and_ctrl_c_at_random_points_of_prepare_leave_a_complete_dataset(tmp_path):
    """A dataset rebuilt and stopped at random moments by kill -9 or Ctrl-C: the dataset at --out is always whole
    (the old one or the new one), and the next run removes what the stopped one left."""
    rng = random.Random(14)
    words = 'the cat sat on a mat and the dog ran far away in 1984'.split()
    (tmp_path / 'in.txt').write_text(' '.join(rng.choice(words) for _ in range(300_000)))
    args, out = ['prepare/text8.py', '--input', 'in.txt', '--out', 'data/books'], str(tmp_path / 'data' / 'books')
    t0 = time.time()
    assert script(args, tmp_path).returncode == 0
    whole = time.time() - t0
    for sig in [signal.SIGKILL, signal.SIGINT] * 3:
        p = start(args, tmp_path)
        time.sleep(rng.uniform(0.0, whole))
        p.send_signal(sig)
        out_text, err = p.communicate(timeout=120)
        assert 'Traceback' not in err, err
        assert read_meta(out)['tokens']['train'] > 0
    assert script(args, tmp_path).returncode == 0
    assert sorted(os.listdir(tmp_path / 'data')) == ['books']


def test_kill_9_between_the_two_renames_of_a_dataset_swap_is_repaired(tmp_path, capsys):
    """The one moment a swap leaves no dataset at the name: the next read puts the old one back, and says so."""
    out = tmp_path / 'data' / 'books'
    rewrite_meta(_make_text_dataset(str(tmp_path), name='books'), prepare='python prepare/text8.py')  # one of its kind
    before = digests(out)
    kill_after_first_rename = (
        "import os, runpy, signal, sys\n"
        "rename = os.rename\n"
        "def first_then_die(a, b):\n"
        "    rename(a, b)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.rename = first_then_die\n"
        f"sys.argv = ['text8.py', '--input', 'in.txt', '--out', {str(out)!r}]\n"
        f"runpy.run_path({os.path.join(REPO, 'prepare', 'text8.py')!r}, run_name='__main__')\n")
    (tmp_path / 'in.txt').write_text('a new book ' * 1000)
    r = subprocess.run([sys.executable, '-c', kill_after_first_rename], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    assert r.returncode == -9 and not out.exists()  # killed with the old dataset set aside
    read_meta(str(out))  # what every script reads a dataset with
    assert 'restored the previous dataset' in capsys.readouterr().err
    assert digests(out) == before


def test_ctrl_c_during_a_comparison_saves_and_exits_130(world, tmp_path):
    (tmp_path / 'data').symlink_to(world / 'data')
    p = start(['compare.py', '--results=res', '--variants=none', '--seeds=1'] + TINY[:-2] + ['--max_iters=100000',
                                                                                          '--device=cpu'], tmp_path)
    ckpt = tmp_path / 'res' / 'runs' / 'none' / 'seed1' / 'ckpt.pt'
    wait_until(ckpt.exists)
    p.send_signal(signal.SIGINT)  # Ctrl-C reaches compare.py, which passes it on to the run
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'Traceback' not in err, err
    assert 'run the same command again' in err.strip().splitlines()[-1]
    load_checkpoint(str(ckpt))

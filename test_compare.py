"""Tests of compare.py: the steps-to-match and summary arithmetic on synthetic logs, and a tiny real run."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from errors import ConfigError
from settings import TRAIN, parse_config, parse_variant
from compare import load_runs, main, paired_differences, summarize, train_seconds


def write_log(results, variant, seed, curve, step_ms=10.0, params=1000):
    d, curve = os.path.join(results, 'runs', variant, f'seed{seed}'), list(curve)
    os.makedirs(d)
    with open(os.path.join(d, 'log.jsonl'), 'w') as f:
        config = {'dataset': 'x', 'n_layer': 1, 'n_embd': 8, 'block_size': 8, 'batch_size': 2, 'max_iters': curve[-1][0]}
        f.write(json.dumps({'config': config, 'params': params}) + '\n')
        for it, loss in curve:
            f.write(json.dumps({'iter': it, 'val_loss': loss, 'train_loss': loss, 'step_ms': step_ms if it else None}) + '\n')


def test_steps_to_match_and_paired_gaps(tmp_path):
    r = str(tmp_path)
    steps = [0, 100, 200, 300, 400]
    write_log(r, 'none', 1, zip(steps, [3.0, 2.5, 2.2, 2.05, 2.0]), step_ms=10)
    write_log(r, 'none', 2, zip(steps, [3.0, 2.5, 2.2, 2.05, 2.2]), step_ms=10)  # baseline target: 2.1
    write_log(r, 'haar', 1, zip(steps, [3.0, 2.3, 2.1, 1.9, 1.8]), step_ms=11)   # mean at 200 = 2.1 <= 2.1
    write_log(r, 'haar', 2, zip(steps, [3.0, 2.3, 2.1, 2.0, 1.9]), step_ms=11)
    write_log(r, 'slow', 1, zip(steps, [3.0, 2.9, 2.8, 2.7, 2.6]), step_ms=20)
    write_log(r, 'slow', 2, zip(steps, [3.0, 2.9, 2.8, 2.7, 2.6]), step_ms=20)
    runs, _ = load_runs(r)
    s, target = summarize({v: runs[v] for v in ('none', 'haar', 'slow')}, 'none')
    assert target == pytest.approx(2.1)
    assert s['haar']['match_step'] == 200 and s['haar']['match_ratio'] == pytest.approx(0.5)
    assert s['haar']['match_ratio_seeds'] == [0.5, 0.5]
    assert s['slow']['match_step'] is None and s['slow']['match_ratio_seeds'] == [None, None]
    assert s['none']['match_step'] == 300  # its mean curve dips below its mean final loss before the end
    # paired final gaps: haar - none = (1.8-2.0, 1.9-2.2) = (-0.2, -0.3)
    assert s['haar']['gap'] == pytest.approx(-0.25)
    assert s['haar']['gap_std'] == pytest.approx(math.sqrt(0.005))
    assert s['haar']['gap_t'] == pytest.approx(-0.25 / (math.sqrt(0.005) / math.sqrt(2)))
    assert s['haar']['final'] == pytest.approx(1.85) and s['none']['final_std'] == pytest.approx(math.sqrt(0.02))
    assert s['haar']['time_ratio'] == pytest.approx(1.1) and s['slow']['time_ratio'] == pytest.approx(2.0)
    # time-to-match: 200 steps at 11 ms against the baseline's 400 at 10 ms
    assert s['haar']['match_time_ratio'] == pytest.approx(200 * 11 / (400 * 10)) and s['slow']['match_time_ratio'] is None
    d = paired_differences(runs)
    assert d['haar', 'none'][0] == pytest.approx(-0.25) and d['none', 'haar'][0] == pytest.approx(0.25)
    assert d['slow', 'haar'] == (pytest.approx(0.75), pytest.approx(math.sqrt(0.005)), 2)


def test_train_seconds_excludes_eval():
    recs = [{'iter': 0, 'step_ms': None}, {'iter': 10, 'step_ms': 100.0}, {'iter': 30, 'step_ms': 50.0}]
    assert train_seconds(recs) == pytest.approx([0.0, 1.0, 2.0])


def test_variant_syntax():
    c, _ = parse_config([], TRAIN)
    assert parse_variant('haar', c, TRAIN) == {'wavelet': 'haar'}
    assert parse_variant('haar+wavelet_frac=0.25+wavelet_last=False', c, TRAIN) == \
        {'wavelet': 'haar', 'wavelet_frac': 0.25, 'wavelet_last': False}
    assert parse_variant('wavelet=ema+learning_rate=3e-3+n_layer=3', c, TRAIN) == \
        {'wavelet': 'ema', 'learning_rate': 3e-3, 'n_layer': 3}
    for bad in ('haar+wavelet_fraction=0.25', 'daubechies', 'haar+wavelet_frac=2', 'n_layer=x'):
        with pytest.raises(ConfigError):
            parse_variant(bad, c, TRAIN)
    with pytest.raises(ConfigError, match='sets seed'):
        parse_variant('haar+seed=3', c, TRAIN, forbidden=('seed',))


def test_compare_end_to_end(tmp_path, monkeypatch, text_dataset):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ['--dataset=tiny', '--variants=none,haar', '--seeds=1,2', '--results=res', '--n_layer=1', '--n_head=2',
            '--n_embd=16', '--block_size=16', '--batch_size=4', '--max_iters=4', '--eval_interval=2',
            '--eval_iters=1', '--device=cpu']
    main(args)
    assert os.path.getsize('res/curves.png') > 1000
    md = open('res/summary.md').read()
    assert '| none |' in md and '| haar |' in md
    mtime = os.path.getmtime('res/runs/haar/seed2/log.jsonl')
    main(args)  # complete runs are not trained again
    assert os.path.getmtime('res/runs/haar/seed2/log.jsonl') == mtime
    main(['--replot=True', '--results=res'])


def test_report_without_matplotlib(tmp_path, monkeypatch, capsys):
    import sys
    r = str(tmp_path)
    write_log(r, 'none', 1, [(0, 3.0), (10, 2.0)])
    write_log(r, 'haar', 1, [(0, 3.0), (10, 1.5)])
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # import matplotlib now raises ImportError
    main(['--replot=True', f'--results={r}', '--variants=none,haar'])
    assert os.path.exists(os.path.join(r, 'summary.md')) and not os.path.exists(os.path.join(r, 'curves.png'))
    assert 'pip install matplotlib' in capsys.readouterr().out


# ---------------------------------------------------------------- several runs at once (--jobs)

JOBS_ARGS = ['--dataset=tiny', '--variants=none,haar', '--seeds=1,2', '--n_layer=1', '--n_head=2', '--n_embd=16',
             '--block_size=16', '--batch_size=4', '--max_iters=6', '--eval_interval=2', '--eval_iters=1', '--device=cpu',
             '--threads=1']


def losses(results):
    """Every run's evaluation records, timings left out."""
    runs, _ = load_runs(results)
    return {(v, s): [(r['iter'], r['train_loss'], r['val_loss']) for r in run['records']]
            for v, seeds in runs.items() for s, run in seeds.items()}


def test_two_jobs_give_what_one_gives(tmp_path, run_script, text_dataset):
    """The runs are independent processes: two at a time give the same losses as one after the other, each
    run's output in its log, and the summary says that the runs shared the machine."""
    text_dataset(tmp_path)
    one = run_script(['compare.py', '--results=one'] + JOBS_ARGS, tmp_path)
    two = run_script(['compare.py', '--results=two', '--jobs=2'] + JOBS_ARGS, tmp_path)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert losses(str(tmp_path / 'one')) == losses(str(tmp_path / 'two'))
    assert 'run 4 of 4 done' in two.stdout and 'final val loss' in (tmp_path / 'two/runs/haar/seed2/train.out').read_text()
    assert 'shared the machine' in (tmp_path / 'two/summary.md').read_text()
    assert 'shared the machine' not in (tmp_path / 'one/summary.md').read_text()


def test_ctrl_c_stops_every_job_and_the_comparison_resumes(tmp_path, repo, text_dataset):
    text_dataset(tmp_path)
    env = dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS='1')
    slow = [{'--max_iters=6': '--max_iters=200', '--seeds=1,2': '--seeds=1'}.get(a, a) for a in JOBS_ARGS] + \
        ['--eval_interval=100']
    p = subprocess.Popen([sys.executable, os.path.join(repo, 'compare.py'), '--results=res', '--jobs=2'] + slow,
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = [tmp_path / 'res' / 'runs' / v / 'seed1' / 'log.jsonl' for v in ('none', 'haar')]
    deadline = time.time() + 120
    while time.time() < deadline and not all(log.exists() and log.stat().st_size for log in logs):
        time.sleep(0.2)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'Traceback' not in err, err
    for v in ('none', 'haar'):  # both running jobs saved a checkpoint to go on from
        assert torch.load(tmp_path / 'res' / 'runs' / v / 'seed1' / 'ckpt.pt', weights_only=True)['iter_num'] > 0
    again = subprocess.run([sys.executable, os.path.join(repo, 'compare.py'), '--results=res', '--jobs=2'] + slow,
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    whole = subprocess.run([sys.executable, os.path.join(repo, 'compare.py'), '--results=whole'] + slow,
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    assert losses(str(tmp_path / 'res')) == losses(str(tmp_path / 'whole'))  # resumed exactly


def test_a_failing_run_is_named_with_its_log_and_the_others_stop(tmp_path, run_script, text_dataset):
    text_dataset(tmp_path)
    # the second variant diverges at once; the first is a long run that must be stopped, not waited for
    args = [a if a != '--max_iters=6' else '--max_iters=100000' for a in JOBS_ARGS]
    args = [a if a != '--variants=none,haar' else '--variants=none,boom:learning_rate=1e30+grad_clip=0.0+warmup_iters=0'
            for a in args]
    started = time.time()
    r = run_script(['compare.py', '--results=res', '--jobs=2', '--eval_interval=1'] + args, tmp_path)
    assert r.returncode == 1 and time.time() - started < 200, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert 'the run boom seed 1 failed' in last and 'res/runs/boom/seed1/train.out' in last, last
    assert 'diverged' in (tmp_path / 'res/runs/boom/seed1/train.out').read_text()
    assert torch.load(tmp_path / 'res/runs/none/seed1/ckpt.pt', weights_only=True)['iter_num'] > 0  # stopped, saved


def test_runs_of_your_own_get_a_table_and_curves(tmp_path, run_script, text_dataset):
    text_dataset(tmp_path)
    tiny = JOBS_ARGS[3:]
    for name, wavelet in (('a', 'none'), ('b', 'haar')):
        r = run_script(['train.py', '--dataset=tiny', f'--out_dir=out/{name}', f'--wavelet={wavelet}'] + tiny, tmp_path)
        assert r.returncode == 0, r.stderr
    r = run_script(['compare.py', '--runs=out/a,out/b', '--results=plots'], tmp_path)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / 'plots' / 'summary.md').read_text()
    assert 'Baseline `a`' in md and '| b |' in md and (tmp_path / 'plots' / 'curves.png').stat().st_size > 1000
    r = run_script(['compare.py', '--runs=out/a,out/b', '--results=plots', '--variants=none'], tmp_path)
    assert r.returncode == 1 and 'do not apply' in r.stderr

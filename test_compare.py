"""Tests of compare.py: the steps-to-match and summary arithmetic on synthetic logs, and a tiny real run."""
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from errors import ConfigError
from settings import TRAIN, parse_config, parse_variant
import compare
from compare import load_runs, main, paired_differences, summarize, train_seconds


def write_log(results, variant, seed, curve, step_ms=10.0, params=1000, max_iters=None, folder=None, **config):
    """A run's log.jsonl as train.py writes it, in results/runs/<variant>/seed<seed>/ (or in folder)."""
    d, curve = folder or os.path.join(results, 'runs', variant, f'seed{seed}'), list(curve)
    os.makedirs(d)
    with open(os.path.join(d, 'log.jsonl'), 'w') as f:
        config = {'dataset': 'x', 'n_layer': 1, 'n_embd': 8, 'block_size': 8, 'batch_size': 2, 'seed': seed,
                  'max_iters': max_iters or curve[-1][0], **config}
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
    pytest.importorskip('matplotlib')
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
    os.remove('res/summary.md')
    main(['--replot=True', '--results=res'])  # the table again from the logs alone, in the runs' own order
    assert open('res/summary.md').read() == md


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
    assert 'diverged' in last and 'once the cause is fixed' in last, last  # its own words, and no false promise
    assert 'diverged' in (tmp_path / 'res/runs/boom/seed1/train.out').read_text()
    assert torch.load(tmp_path / 'res/runs/none/seed1/ckpt.pt', weights_only=True)['iter_num'] > 0  # stopped, saved
    # again: this attempt's words in train.out, alone (the attempt before in train.previous.out), not buried
    boom = [a for a in args if not a.startswith('--variants')] + ['--variants=boom:learning_rate=1e30+grad_clip=0.0+warmup_iters=0']
    r = run_script(['compare.py', '--results=res', '--jobs=2', '--eval_interval=1'] + boom, tmp_path)
    out = tmp_path / 'res/runs/boom/seed1'
    assert r.returncode == 1 and 'diverged' in r.stderr.strip().splitlines()[-1], r.stderr
    assert (out / 'train.out').read_text().count('diverged') == 1 and 'diverged' in (out / 'train.previous.out').read_text()


def test_runs_of_your_own_get_a_table_and_curves(tmp_path, run_script, text_dataset):
    pytest.importorskip('matplotlib')
    text_dataset(tmp_path)
    tiny = JOBS_ARGS[3:]
    for name, wavelet in (('a', 'none'), ('b', 'haar')):
        r = run_script(['train.py', '--dataset=tiny', f'--out_dir=out/{name}', f'--wavelet={wavelet}'] + tiny, tmp_path)
        assert r.returncode == 0, r.stderr
    r = run_script(['compare.py', '--runs=out/a,out/b', '--results=plots'], tmp_path)
    assert r.returncode == 0, r.stderr
    md = (tmp_path / 'plots' / 'summary.md').read_text()
    assert 'Baseline `a`' in md and '| b |' in md and (tmp_path / 'plots' / 'curves.png').stat().st_size > 1000
    assert 'baseline: out/a (the first of --runs)' in r.stdout and 'note:' not in r.stderr
    r = run_script(['compare.py', '--runs=out/a,out/b', '--results=plots', '--variants=none'], tmp_path)
    assert r.returncode == 1 and 'do not apply' in r.stderr
    # the wavelet run first (the README's old order): said, so that nobody reads the table the wrong way round
    r = run_script(['compare.py', '--runs=out/b,out/a', '--results=swapped'], tmp_path)
    assert r.returncode == 0 and 'the baseline b has wavelet=haar and a has none' in r.stderr, r.stderr


# ---------------------------------------------------------------- what the user gives, refused before any work

def digest(folder):
    """{path: sha256} of every file under folder: the user's files, to see that nothing changed."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), 'rb') as f:
                out[os.path.join(root, name)] = hashlib.sha256(f.read()).hexdigest()
    return out


def refused(result, words):
    """A command's (exit code, stdout, stderr): exit 1, one line naming the problem, no traceback."""
    code, out, err = result
    assert code == 1 and 'Traceback' not in err and err.strip().startswith('error: '), err
    assert len(err.strip().splitlines()) == 1 and words in err, err
    return err


def comparison(results, seeds=(1, 2)):
    """A finished comparison of none and haar: its run logs only."""
    for seed in seeds:
        write_log(results, 'none', seed, [(0, 3.0), (10, 2.0)])
        write_log(results, 'haar', seed, [(0, 3.0), (10, 1.8)])


def test_files_of_yours_named_like_the_summary_are_never_replaced(tmp_path, run_scripts):
    """summary.md, summary.json and curves.png are replaced only when compare.py wrote them."""
    w = tmp_path / 'w'  # run_scripts writes beside it
    for name, text in (('summary.md', '# my notes\n'), ('summary.json', '{"mine": 1}'), ('curves.png', 'my plot')):
        comparison(str(w / name))
        (w / name / name).write_text(text)
    before = digest(w)
    results = run_scripts([['compare.py', '--replot=True', f'--results={name}', '--variants=none,haar']
                           for name in ('summary.md', 'summary.json', 'curves.png')], w)
    for name, r in zip(('summary.md', 'summary.json', 'curves.png'), results):
        refused(r, f'{name}/{name} is not one that compare.py wrote')
    assert digest(w) == before
    # its own files are replaced: the table, the numbers and (with matplotlib) a plot it marked
    comparison(str(w / 'ours'))
    for r in run_scripts([['compare.py', '--replot=True', '--results=ours', '--variants=none,haar']] * 2, w):
        assert r[0] == 0, r[2]
    # and with --runs, into a folder that holds a summary.json of the user's
    write_log('', 'a', 1, [(0, 3.0), (10, 2.0)], folder=str(w / 'out' / 'a'))
    write_log('', 'b', 1, [(0, 3.0), (10, 1.9)], folder=str(w / 'out' / 'b'))
    (w / 'plots').mkdir()
    (w / 'plots' / 'summary.json').write_text('{"a": {"final": 1}}')
    before = digest(w / 'plots')
    refused(run_scripts([['compare.py', '--runs=out/a,out/b', '--results=plots']], w)[0],
            'plots/summary.json is not one that compare.py wrote')
    assert digest(w / 'plots') == before


def test_runs_that_cannot_be_compared_are_refused_and_partial_ones_said(tmp_path, run_scripts):
    """The same run twice, runs of two datasets: refused; runs with no seed in common, or not finished: said."""
    def run(name, seed=1, dataset='x', curve=((0, 3.0), (10, 2.0)), **kw):
        write_log('', name, seed, curve, folder=str(tmp_path / 'out' / name), dataset=dataset, **kw)
    run('a')
    run('other', dataset='y')
    run('b', seed=2, curve=((0, 3.0), (10, 1.9)))
    run('stopped', curve=((0, 3.0), (10, 2.5)), max_iters=30)
    run('live', curve=((0, 3.0), (10, 2.4)), max_iters=30)
    (tmp_path / 'out' / 'live' / 'train.lock').write_text(f"the run with pid {os.getpid()} (train.py)")
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    (tmp_path / 'out' / 'stopped' / 'train.lock').write_text(f"the run with pid {gone.stdout.strip()} (train.py)")
    r = run_scripts([['compare.py', '--runs=out/a,out/a', '--results=new'],
                     ['compare.py', '--runs=out/a,out/a/', '--results=new'],
                     ['compare.py', '--runs=out/a,out/other', '--results=new'],
                     ['compare.py', '--runs=out/a,out/b,out/stopped,out/live', '--results=plots']], tmp_path)
    refused(r[0], 'out/a and out/a are the same run')
    refused(r[1], 'out/a and out/a/ are the same run')
    refused(r[2], 'trained on data/y')
    assert not (tmp_path / 'new').exists()  # a refused comparison leaves no folder behind
    assert r[3][0] == 0, r[3][2]
    md = (tmp_path / 'plots' / 'summary.md').read_text()
    assert 'nan' not in md and '| b | 1,000 | 1 | 10 | 1.9000 ± 0.0000 | 2.7411 | 10 (1.00; 1.00) | 1.00 | no seed in common |' in md
    assert 'Incomplete: 2 of 4 runs missing or not finished' in md and 'stopped: stopped at step 10 of 30' in md
    assert 'live: still training (step 10 of 30 so far)' in md and '| live | 1,000 | 1 | 10 of 30 |' in md
    s = json.loads((tmp_path / 'plots' / 'summary.json').read_text())
    assert s['b']['gap'] is None and s['b']['complete'] and not s['live']['complete']


def test_a_stopped_comparison_says_what_is_missing(tmp_path, monkeypatch, capsys):
    """--replot of a comparison stopped part-way: the table and the plot name the runs missing or stopped."""
    r = str(tmp_path)
    write_log(r, 'none', 1, [(0, 3.0), (50, 2.2), (100, 2.0)])
    write_log(r, 'none', 2, [(0, 3.0), (50, 2.3), (100, 2.1)])
    write_log(r, 'haar', 1, [(0, 3.0), (50, 2.0)], max_iters=100)
    (tmp_path / 'plan.json').write_text(json.dumps({'variants': ['none', 'haar', 'learnable'], 'seeds': [1, 2]}))
    drawn = {}
    monkeypatch.setattr(compare, 'plot', lambda runs, path, title, notes=None: drawn.update(title=title, notes=notes))
    main(['--replot=True', f'--results={r}'])
    md = (tmp_path / 'summary.md').read_text()
    assert '**Incomplete: 4 of 6 runs missing or not finished** (haar seed 2: no log yet; haar seed 1: stopped at ' \
           'step 50 of 100; learnable seeds 1, 2: no log yet)' in md
    assert '| haar | 1,000 | 1 of 2 | 50 of 100 |' in md and '| none | 1,000 | 2 | 100 |' in md
    assert drawn['title'].startswith('INCOMPLETE (4 of 6 runs missing or not finished)')
    assert drawn['notes'] == {'haar': '1 missing, stopped at step 50 of 100', 'learnable': '2 missing'}
    assert not json.loads((tmp_path / 'summary.json').read_text())['haar']['complete']


def test_the_curves_show_the_start_and_a_conversion_jump(tmp_path, monkeypatch):
    """The upper panels hold every point of every curve (the first evaluation, a converted run's jump)."""
    pytest.importorskip('matplotlib')
    from matplotlib.figure import Figure
    r = str(tmp_path)
    write_log(r, 'softmax', 1, [(0, 5.0), (10, 2.5), (20, 2.0)])
    write_log(r, 'converted', 1, [(0, 6.0), (5, 2.2), (10, 1.9)])  # the jump on conversion, above the start
    limits, save = [], Figure.savefig
    monkeypatch.setattr(Figure, 'savefig', lambda fig, *a, **k: limits.append([ax.get_ylim() for ax in fig.axes])
                        or save(fig, *a, **k))
    main(['--replot=True', f'--results={r}', '--variants=softmax,converted'])
    top_step, top_time, close_step, _ = limits[0]
    bits = 1 / math.log(2)
    assert top_step[0] <= 1.9 * bits and top_step[1] >= 6.0 * bits and top_time[1] >= 6.0 * bits
    assert close_step[1] < 5.0 * bits  # the closer view starts below the first evaluation
    with open(os.path.join(r, 'curves.png'), 'rb') as f:
        assert b'compare.py (WaveletGPT)' in f.read(4096)  # its mark: a later run may replace it


def test_a_torn_or_damaged_log_is_named_by_its_line(tmp_path, run_scripts):
    """A torn last line (a full disk) is left out; a damaged line is named by its number, and a run with a
    checkpoint is not told to train again from scratch."""
    comparison(str(tmp_path / 'torn'))
    with open(tmp_path / 'torn/runs/haar/seed2/log.jsonl', 'a') as f:
        f.write('{"iter": 20, "val_lo')
    shutil.copytree(tmp_path / 'torn', tmp_path / 'lost')  # without a checkpoint: damaged, trained again
    (tmp_path / 'torn/runs/haar/seed2/ckpt.pt').write_bytes(b'a checkpoint')
    comparison(str(tmp_path / 'bad'))
    log = tmp_path / 'bad/runs/haar/seed2/log.jsonl'
    lines = log.read_text().splitlines(True)
    log.write_text(lines[0] + lines[1][:-5] + '\n' + lines[2])
    (tmp_path / 'bad/runs/haar/seed2/ckpt.pt').write_bytes(b'a checkpoint')
    before = digest(tmp_path / 'bad')
    torn, bad, lost = run_scripts([['compare.py', '--replot=True', f'--results={r}', '--variants=none,haar']
                                   for r in ('torn', 'bad', 'lost')], tmp_path)
    refused(lost, 'lost/runs/haar/seed2/log.jsonl is damaged at line 4 (JSONDecodeError: Unterminated string '
            'starting at: line 1 column 14 (char 13)); delete lost/runs/haar/seed2 to train that run again')
    assert torn[0] == 0 and 'ends in a torn line 4 (a write cut short): left out' in torn[2], torn[2]
    err = refused(bad, 'bad/runs/haar/seed2/log.jsonl is damaged at line 2')
    assert "ckpt.pt is kept" in err and 'run the same command' not in err
    assert digest(tmp_path / 'bad') == before


def test_a_read_only_place_for_the_results_is_refused_before_any_work(tmp_path, monkeypatch, run_scripts):
    (tmp_path / 'ro').mkdir()
    write_log('', 'a', 1, [(0, 3.0), (10, 2.0)], folder=str(tmp_path / 'out' / 'a'))
    monkeypatch.chdir(tmp_path)
    real = os.access
    monkeypatch.setattr(os, 'access', lambda p, mode: real(p, mode) and not str(p).endswith('ro'))
    for args in (['--runs=out/a'], ['--variants=none', '--dataset=nosuch']):  # before the dataset is looked for
        with pytest.raises(ConfigError, match='the folder .*ro is not writable; give another --results'):
            main(args + ['--results=ro/new'])
    assert os.listdir('ro') == []
    if os.geteuid() != 0:  # root writes into a read-only folder
        os.chmod('ro', 0o555)
        refused(run_scripts([['compare.py', '--runs=out/a', '--results=ro/new']], tmp_path)[0], 'is not writable')


def test_every_seed_is_checked_before_the_first_run(tmp_path, run_scripts, text_dataset):
    text_dataset(tmp_path)
    text_dataset(tmp_path, name='tiny2')
    r = run_scripts([['compare.py', '--results=res'] + JOBS_ARGS + ['--seeds=1,18446744073709551616'],
                     ['compare.py', '--results=res'] + JOBS_ARGS + ['--variants=none,other:dataset=tiny2']], tmp_path)
    refused(r[0], 'seed=18446744073709551616')
    refused(r[1], "variant 'other:dataset=tiny2' trains on data/tiny2, the baseline on data/tiny")
    assert not (tmp_path / 'res').exists()


def test_the_help_examples_read_as_typed(run_scripts, tmp_path):
    code, out, _ = run_scripts([['compare.py', '--help']], tmp_path)[0]
    assert code == 0 and '--seeds=1,2,3 \\\n        --results=results/text8' in out
    assert '(`linear:attention=linear+position=rope`)' in out


def alive(pid):
    """Whether the process pid runs (a zombie, ended but not yet collected, does not)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
@pytest.mark.parametrize('how', ['SIGKILL', 'SIGHUP'])
def test_the_runs_die_with_the_comparison_however_it_dies(tmp_path, repo, text_dataset, how):
    """kill -9 or a closed terminal: each train.py saves and stops; none trains on alone."""
    text_dataset(tmp_path)
    env = dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS='1')
    slow = [{'--max_iters=6': '--max_iters=100000', '--seeds=1,2': '--seeds=1'}.get(a, a) for a in JOBS_ARGS] + \
        ['--eval_interval=100000']
    p = subprocess.Popen([sys.executable, os.path.join(repo, 'compare.py'), '--results=res', '--jobs=2'] + slow,
                         cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = [tmp_path / 'res' / 'runs' / v / 'seed1' / 'train.lock' for v in ('none', 'haar')]
    logs = [lock.with_name('log.jsonl') for lock in locks]
    deadline = time.time() + 120
    while time.time() < deadline and not all(log.exists() and log.stat().st_size for log in logs):
        time.sleep(0.2)
    pids = [int(lock.read_text().split('pid ')[1].split()[0]) for lock in locks]
    assert all(map(alive, pids))
    p.send_signal(getattr(signal, how))
    p.wait(timeout=60)
    deadline = time.time() + 60
    while time.time() < deadline and any(map(alive, pids)):
        time.sleep(0.2)
    assert not any(map(alive, pids))
    if how == 'SIGHUP':  # compare.py itself saw it, stopped each run (SIGTERM: it saves) and waited for them
        assert p.returncode == 130
    for v in ('none', 'haar'):  # each stopped as on SIGTERM: saved first
        assert (tmp_path / 'res' / 'runs' / v / 'seed1' / 'ckpt.pt').exists()


def test_without_pdeathsig_a_watcher_ends_the_child(tmp_path, repo):
    """Where PR_SET_PDEATHSIG is missing (not Linux), a watcher process ends the run when compare.py is gone."""
    code = ("import sys, time, compare; compare._prctl = None; "
            "p = compare.start_child([sys.executable, '-c', 'import time; time.sleep(120)']); "
            "print(p.pid, p.watcher.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, '-c', code], cwd=repo, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=repo))
    child, watcher = map(int, parent.stdout.readline().split())
    assert alive(child) and alive(watcher)
    parent.kill()
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and (alive(child) or alive(watcher)):
        time.sleep(0.2)
    assert not alive(child) and not alive(watcher)


def test_a_run_whose_log_was_torn_goes_on_from_its_checkpoint(tmp_path, run_script, text_dataset):
    """A full disk cut the last evaluation short: the comparison run again mends the log and goes on (here the
    checkpoint is at the end already: its last evaluation is made again, the same number)."""
    text_dataset(tmp_path)
    args = ['compare.py', '--results=res'] + JOBS_ARGS + ['--variants=none', '--seeds=1']
    assert run_script(args, tmp_path).returncode == 0
    log = tmp_path / 'res/runs/none/seed1/log.jsonl'
    final = json.loads(log.read_text().splitlines()[-1])
    log.write_bytes(log.read_bytes()[:-20])
    r = run_script(args, tmp_path)
    assert r.returncode == 0 and 'its torn last line cut off' in r.stdout, r.stderr
    assert load_runs(str(tmp_path / 'res'))[0]['none'][1]['records'][-1]['val_loss'] == final['val_loss']
    assert f"| none | " in r.stdout and json.loads((tmp_path / 'res/summary.json').read_text())['none']['complete']

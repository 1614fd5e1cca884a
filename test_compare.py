"""Tests of compare.py: the steps-to-match and summary arithmetic on synthetic logs, and a tiny real run."""
import json
import math
import os

import pytest

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

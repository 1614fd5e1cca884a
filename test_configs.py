"""
Each method's laptop command (docs/fourier_head.md, docs/supra.md, docs/equal_info.md, "On a laptop")
runs as written, cut to a few steps on tiny data made here: the Fourier head's and SUPRA's
comparisons, and Equal-Info's pipeline (excerpt, M1, the coder, M2). What they show at full length
is in those pages; here, that each step runs and writes what the next one reads.
    python -m pytest -q test_configs.py
"""
import json
import os
import re

import numpy as np
import pytest

from dataset import write_dataset
from settings import read_config_file
from tokens.mulaw import MuLaw, mulaw_encode

FEW = ['--max_iters=2', '--eval_interval=2', '--eval_iters=1', '--warmup_iters=1', '--seeds=1', '--results=r']


def ok(r):
    assert r.returncode == 0, (r.stdout[-1000:], r.stderr[-2000:])
    return r


def config(repo, name):
    return os.path.join(repo, 'config', name)


def few_steps(variants):
    """A comparison's variants with their own step counts cut to a few."""
    return re.sub(r'\b(max_iters|warmup_iters)=\d+', lambda m: m[1] + ('=2' if m[1] == 'max_iters' else '=1'), variants)


def summary(tmp_path):
    return json.loads((tmp_path / 'r' / 'summary.json').read_text())


def run_log(tmp_path, variant):
    """(header, evaluations) of seed 1's run of a variant."""
    with open(tmp_path / 'r' / 'runs' / variant / 'seed1' / 'log.jsonl') as f:
        lines = [json.loads(line) for line in f]
    return lines[0], lines[1:]


def test_the_quick_fourier_comparison_runs(repo, tmp_path, run_script):
    """On a second of two tones in mu-law (tones itself is tested in test_prepare.py): each head's run, and the
    smoothness of its predicted distributions in the table."""
    pytest.importorskip('scipy')  # the smoothness metric
    t = np.arange(16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t) + 0.2 * np.sin(2 * np.pi * 331 * t)
    ids = mulaw_encode(x + 0.001 * np.random.default_rng(0).standard_normal(len(t)))
    write_dataset(str(tmp_path / 'data' / 'tones'), {'train': ids[:14000], 'val': ids[14000:]}, MuLaw.facts())
    ok(run_script(['compare.py', config(repo, 'compare_quick_fourier.py'), *FEW], tmp_path))
    s = summary(tmp_path)
    assert list(s) == read_config_file(config(repo, 'compare_quick_fourier.py'))['variants'].split(',')
    assert all(v['steps'] == 2 and v['smoothness'] > 0 for v in s.values())
    for variant, freqs in zip(s, (0, 16, 64)):  # each run is the head its variant names, and the table is its log's
        header, evals = run_log(tmp_path, variant)
        assert (header['config']['head'], header['config']['fourier_freqs'] if freqs else 0) == \
            ('fourier' if freqs else 'linear', freqs)
        assert [e['iter'] for e in evals] == [0, 2] and ('val_regulariser' in evals[-1]) == bool(freqs)
        assert s[variant]['smoothness'] == pytest.approx(evals[-1]['val_smoothness'])  # one seed: its value


def test_the_quick_supra_comparison_runs(repo, tmp_path, run_script, text_dataset):
    """softmax, then converted from its checkpoint, then linear from scratch, on a stand-in for pydocs."""
    text_dataset(str(tmp_path), name='pydocs')
    variants = read_config_file(config(repo, 'compare_quick_supra.py'))['variants']
    ok(run_script(['compare.py', config(repo, 'compare_quick_supra.py'), *FEW, f'--variants={few_steps(variants)}'],
                  tmp_path))
    assert list(summary(tmp_path)) == ['softmax', 'converted', 'scratch']
    with open(tmp_path / 'r' / 'runs' / 'converted' / 'seed1' / 'log.jsonl') as f:
        header = json.loads(f.readline())
    assert header['config']['attention'] == 'linear' and header['config']['init_from'].endswith(
        os.path.join('softmax', 'seed1', 'ckpt.pt'))
    # converted from the softmax run's last step, phi new in each of the 4 layers; 4 heads decay as exp(-2^-2(h+1))
    assert header['started_from']['iter_num'] == 2 and len(header['started_from']['new_tensors']) == 8
    assert header['decays'] == pytest.approx([0.778801, 0.939413, 0.984496, 0.996101], abs=1e-6)
    scratch, evals = run_log(tmp_path, 'scratch')
    assert scratch['started_from'] is None and scratch['config']['position'] == 'rope'
    assert abs(evals[0]['val_loss'] - np.log(27)) < 0.3  # random weights: about uniform over 27 symbols


def test_the_quick_equal_info_pipeline_runs(repo, tmp_path, run_scripts):
    """docs/equal_info.md's commands in order, on an 8 kB text in place of pydocs' first 300,000 characters."""
    words = ['the', 'module', 'returns', 'a', 'list', 'of', 'strings,', 'and', 'raises', 'ValueError', 'when\n']
    (tmp_path / 'in.txt').write_text(' '.join(np.random.default_rng(0).choice(words, 2000)))
    few = ['--max_iters=3', '--eval_interval=3', '--eval_iters=1', '--warmup_iters=1', '--batch_size=4']
    text = 'data/pydocs_300k.txt'
    results = run_scripts([
        ['prepare/excerpt.py', '--input', 'in.txt', '--chars', '8000', '--out', text],
        ['prepare/bytes.py', '--input', text, '--out', 'data/pydocs300k_m1', '--chunk', '16'],
        ['train.py', config(repo, 'equal_info_m1_quick.py'), *few],
        ['prepare/equal_info.py', '--input', text, '--m1', 'out/m1_pydocs300k/ckpt.pt', '--out', 'data/pydocs300k_ei16'],
        ['prepare/equal_info.py', '--regroup', 'data/pydocs300k_ei16', '--token_bits', '8', '--out', 'data/pydocs300k_ei8'],
        ['decode.py', '--data=data/pydocs300k_ei16', '--split=val', '--check=True'],
        ['prepare/bytes.py', '--input', text, '--out', 'data/pydocs300k_bytes'],
        ['train.py', config(repo, 'equal_info_m2.py'), '--dataset=pydocs300k_bytes', '--out_dir=out/m2_bytes', *few],
        ['train.py', config(repo, 'equal_info_m2.py'), '--dataset=pydocs300k_ei8', '--out_dir=out/m2_ei8', *few],
    ], tmp_path)
    for code, out, err in results:
        assert code == 0, (out[-1000:], err[-2000:])
    assert re.search(r'\b0 of [\d,]+ windows differ; identical', results[5][1]), results[5][1]  # decoded exactly
    ei16, ei8 = (json.loads((tmp_path / 'data' / d / 'meta.json').read_text()) for d in ('pydocs300k_ei16', 'pydocs300k_ei8'))
    assert (ei16['vocab_size'], ei8['vocab_size']) == (65536, 256)
    tokens = {d: (tmp_path / 'data' / d / 'val.bin').stat().st_size // np.dtype(m['dtype']).itemsize
              for d, m in (('pydocs300k_ei16', ei16), ('pydocs300k_ei8', ei8))}
    assert tokens['pydocs300k_ei8'] == 2 * tokens['pydocs300k_ei16'] > 0  # two 8-bit tokens per 16-bit window
    # M2 reports bits per byte: over bytes, one token is one byte, so it equals bits per token
    per_token, per_byte = map(float, re.findall(r'val [\d.]+ \(([\d.]+) bits/token, ([\d.]+) bits/byte\)', results[-2][1])[-1])
    assert per_byte == per_token > 0
    assert re.search(r'[\d.]+ bits/byte', results[-1][1])

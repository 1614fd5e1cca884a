"""bench.py runs every mode to its table on a tiny model (its numbers are for benchmarks, not tests)."""
import pytest

TINY = ['--n_layer=1', '--n_head=2', '--n_embd=16', '--block_size=16', '--batch_size=2', '--rounds=1', '--steps=1',
        '--warmup=1', '--threads=1', '--device=cpu']


@pytest.mark.parametrize('mode,header,row', [('train', '| variant | params | ms / iter', '| learnable |'),
                                             ('generate', '| variant | decoding step', '| learnable |'),
                                             ('positions', '| positions |', '| 9-16 |'),
                                             ('wavelet', '| form | ms', 'Toeplitz')])
def test_every_mode_prints_its_table(mode, header, row, run_script, tmp_path):
    r = run_script(['bench.py', f'--mode={mode}', '--gen_tokens=40', '--vocab_size=32'] + TINY, tmp_path)
    assert r.returncode == 0, r.stderr
    assert header in r.stdout and row in r.stdout, r.stdout

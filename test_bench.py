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


# ---------------------------------------------------------------- the numbers in the tables

def table_rows(out):
    """The rows of the markdown table in out, each a list of its cells."""
    return [[cell.strip() for cell in line.strip('|').split('|')] for line in out.splitlines()
            if line.startswith('| ') and not line.startswith('| variant') and not line.startswith('| form')]


def stub_timer(monkeypatch, seconds):
    """bench.timed returns these seconds, one per call, in order (the steps still run, untimed)."""
    import bench
    calls = iter(seconds)
    monkeypatch.setattr(bench, 'timed', lambda step, n, device: next(calls))
    return bench


def settings(*args):
    import bench
    from settings import parse_config
    c, _ = parse_config(TINY + ['--vocab_size=32', '--gen_tokens=40', *args], bench.BENCH)
    return c


def test_train_table_is_the_median_and_its_ratio(monkeypatch, capsys):
    """Rounds are interleaved (none, haar, learnable, none, ...); a variant's time is its median round, its ratio
    that over the first variant's, tokens/s the batch's tokens over its time. Worked by hand: none 10, 30, 20 ms ->
    20.0; haar 25, 21, 40 -> 25.0 (1.250); learnable 500, 33, 30 -> 33.0 (1.650); 2 x 16 tokens / 20 ms = 1,600/s."""
    bench = stub_timer(monkeypatch, [0.010, 0.025, 0.500, 0.030, 0.021, 0.033, 0.020, 0.040, 0.030])
    results = bench.bench(settings('--rounds=3'))
    rows = table_rows(capsys.readouterr().out)
    assert [r[:5] for r in rows] == [['none', rows[0][1], '20.0', '1.000', '1,600'],
                                     ['haar', rows[0][1], '25.0', '1.250', '1,280'],
                                     ['learnable', rows[2][1], '33.0', '1.650', '970']]
    assert results == pytest.approx({'none': 20.0, 'haar': 25.0, 'learnable': 33.0})


def test_generate_table_is_the_median_and_its_speedup(monkeypatch, capsys):
    """Per round the decoding step, then the recomputed context; then one whole generate(). By hand: steps 1, 2, 4 ms
    -> 2 ms, 500 tokens/s; recomputed 50, 40, 100 ms -> 50 ms, 20.0/s; speedup 25.0x; 40 tokens in 2.0 s: 20/s."""
    bench = stub_timer(monkeypatch, [0.001, 0.050, 0.002, 0.040, 0.004, 0.100, 2.0])
    bench.bench_generate(settings('--mode=generate', '--variants=none', '--rounds=3'))
    assert table_rows(capsys.readouterr().out) == [['none', '500', '20.0', '25.0x', '2.0', '20']]


def test_a_real_runs_table_agrees_with_itself(run_script, tmp_path):
    """Unstubbed: each ratio is that row's ms over the first row's, tokens/s the batch's tokens over the ms."""
    r = run_script(['bench.py', '--vocab_size=32', '--rounds=2'] + TINY, tmp_path)
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stdout)
    assert [row[0] for row in rows] == ['none', 'haar', 'learnable']
    base = float(rows[0][2])
    for name, params, ms, ratio, tokens in (row[:5] for row in rows):  # within the rounding of the printed ms
        ms, ratio, tokens = float(ms), float(ratio), float(tokens.replace(',', ''))
        # each printed ms is within 0.05 of the true one, a ratio within 0.0005, tokens/s within 0.5
        assert (ms - 0.05) / (base + 0.05) - 0.0005 <= ratio <= (ms + 0.05) / (base - 0.05) + 0.0005, name
        assert 32000 / (ms + 0.05) - 0.5 <= tokens <= 32000 / (ms - 0.05) + 0.5, name  # 2 x 16 tokens a step

"""
The published numbers against the committed logs: each table and prose number of README.md, docs/ and
results/*/README.md that cites a run is computed here again from that run's log (results/*/runs/*/seed*/log.jsonl,
or a committed output file beside it) and looked for, as written, in the text. A rerun that changes a log, or an
edit of the prose, fails here until the two agree again. No training: a second or two.
    python -m pytest -q test_published.py
The bench.py timings are checked against the printed tables kept in results/bench/ (results/bench/README.md) once
those files are committed; until then those checks are skipped, saying which file is missing.
"""
import glob
import json
import math
import os
import re
import statistics

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
LN2 = math.log(2)


def text(path):
    """A page with its line breaks and runs of spaces made single spaces (prose wraps anywhere)."""
    with open(os.path.join(ROOT, path), encoding='utf-8') as f:
        return re.sub(r'\s+', ' ', f.read())


def says(path, *claims):
    """Each claim appears in the page, as written."""
    page = text(path)
    missing = [c for c in claims if re.sub(r'\s+', ' ', c) not in page]
    assert not missing, f"{path} does not say (the logs give): {missing}"


def curves(results, variant):
    """{iter: val_loss} of each seed's run, in seed order."""
    out = []
    for f in sorted(glob.glob(os.path.join(ROOT, 'results', results, 'runs', variant, 'seed*', 'log.jsonl'))):
        with open(f) as lines:
            records = [json.loads(line) for line in lines]
        out.append({r['iter']: r for r in records if 'val_loss' in r})
    assert out, f"no logs in results/{results}/runs/{variant}"
    return out


def finals(results, variant, at=None, key='val_loss'):
    """Each seed's value at step `at` (default: its last evaluation)."""
    return [c[max(c) if at is None else at][key] for c in curves(results, variant)]


def mean(xs):
    return sum(xs) / len(xs)


def paired(results, a, b, at_a=None, at_b=None):
    """a - b, paired by seed: (mean, sd over seeds)."""
    gaps = [x - y for x, y in zip(finals(results, a, at_a), finals(results, b, at_b))]
    return mean(gaps), statistics.stdev(gaps)


def bits(results, variant):
    return mean(finals(results, variant)) / LN2


def steps_to_match(results, variant, base='none'):
    """The first evaluated step at which the variant's mean (and each seed's) validation loss is at or below the
    baseline's final mean, as a fraction of the baseline's steps: '0.25 (all 3 seeds)' or '0.75 (0.75, 0.62, 0.75)'."""
    target, steps = mean(finals(results, base)), max(curves(results, base)[0])
    runs = curves(results, variant)
    its = sorted(runs[0])
    first = lambda losses: next(it for it, loss in zip(its, losses) if loss <= target) / steps
    whole = first([mean([c[it]['val_loss'] for c in runs]) for it in its])
    seeds = [first([c[it]['val_loss'] for it in its]) for c in runs]
    per = f"all {len(seeds)} seeds" if all(s == whole for s in seeds) else ', '.join(f"{s:.2f}" for s in seeds)
    return f"{whole:.2f} ({per})"


def test_wavelet_tables():
    """README's and docs/wavelet.md's main table: bits at step 400, steps-to-match, the paired gaps."""
    for name, results, unit in (('text', 'books', 'bits per character'), ('raw audio', 'piano', 'bits per sample'),
                                ('symbolic music', 'midi', 'bits per event')):
        cells = [f"{bits(results, v):.3f}" for v in ('none', 'haar', 'learnable')]
        m, sd = paired(results, 'haar', 'none')
        row = f" | {' | '.join(cells)} | {steps_to_match(results, 'haar')} | {m:.3f} ± {sd:.3f} nats |"
        says('README.md', f"| {name}, {unit} ([table](results/{results}/summary.md)){row}")
        m2, sd2 = paired(results, 'learnable', 'haar')
        says('docs/wavelet.md', f"| {name}, {unit} ([table](../results/{results}/summary.md)){row} {m2:.3f} ± {sd2:.3f} nats |")


def test_ablation_table():
    rows = {'none': '`none`', 'haar': '`haar` (half the coordinates, windows 2 .. 128)',
            'haar+wavelet_frac=0.25': '`haar+wavelet_frac=0.25` (a quarter of them)',
            'haar+wavelet_pad=valid': '`haar+wavelet_pad=valid` (divide by the tokens seen)',
            'ema': '`ema` (exponential averages, same spans)',
            'haar+wavelet_window=32': '`haar+wavelet_window=32` (one window for all)'}
    for variant, label in rows.items():
        cells = []
        for results in ('books_ablation', 'piano_ablation'):
            cells.append(f"{bits(results, variant):.3f}")
            m, sd = paired(results, variant, 'haar')
            cells.append('-' if variant == 'haar' else f"{m:+.3f} ± {sd:.3f}")
        says('docs/wavelet.md', f"| {label} | {' | '.join(cells)} |")


def smoothness(results, variant):
    return mean(finals(results, variant, key='val_smoothness'))


FOURIER = ['head=fourier+fourier_freqs=16', 'head=fourier+fourier_freqs=64', 'head=fourier+fourier_freqs=128']


def test_fourier_head():
    """docs/fourier_head.md's table, the smoothness ratios and likelihood gaps in README and the docs, the
    regulariser's range in results/fourier/README.md, the toy's printed numbers."""
    r = 'fourier'
    for label, head in zip(['linear head', 'Fourier, N = 16', 'Fourier, N = 64', 'Fourier, N = 128'], ['none'] + FOURIER):
        haar = 'haar' if head == 'none' else 'haar+' + head
        b, bh = f"{bits(r, head):.3f}", f"{bits(r, haar):.3f}"
        s, sh = f"{smoothness(r, head):.3f}", f"{smoothness(r, haar):.3f}"
        if head == 'none':
            b, bh = f"**{b}**", f"**{bh}**"
        if head == FOURIER[0]:
            s, sh = f"**{s}**", f"**{sh}**"
        says('docs/fourier_head.md', f"| {label} | {b} | {s} | {bh} | {sh} |")
    ratios = [smoothness(r, 'none') / smoothness(r, v) for v in FOURIER] + \
             [smoothness(r, 'haar') / smoothness(r, 'haar+' + v) for v in FOURIER]
    smoother = f"{min(ratios):.1f}-{max(ratios):.1f} times smoother"
    says('README.md', smoother)
    says('docs/fourier_head.md', smoother)
    worse = [paired(r, v, 'none')[0] for v in FOURIER]
    worse_haar = [paired(r, 'haar+' + v, 'haar')[0] for v in FOURIER]
    says('README.md', f"by {min(worse):.2f}-{max(worse):.2f} nats per sample without the wavelet")
    says('docs/fourier_head.md', f"worse by {min(worse):.2f}-{max(worse):.2f} nats per sample without the wavelet "
                                 f"and {min(worse_haar):.2f}-{max(worse_haar):.2f} with it")
    reg = [[rec['val_regulariser'] for it, rec in sorted(c.items())]
           for v in FOURIER + ['haar+' + v for v in FOURIER] for c in curves(r, v)]
    assert len(reg) == 18
    says('results/fourier/README.md',
         f"ends at {min(x[-1] for x in reg):.4f}-{max(x[-1] for x in reg):.4f} in all 18 Fourier runs",
         f"peaks at {min(map(max, reg)):.3f}-{max(map(max, reg)):.3f}")
    toy = text('results/fourier/toy.txt')
    linear, fourier = (re.search(kind + r"': array\(\[([\d.]+), ([\d.]+)\]\)", toy).groups() for kind in ('linear', 'fourier'))
    says('docs/fourier_head.md', f"KL {float(linear[0]):.3f} vs {float(fourier[0]):.3f}, smoothness "
                                 f"{float(linear[1]):.3f} vs {float(fourier[1]):.3f}, linear vs Fourier-8")


def test_quick_fourier():
    r = 'quick_fourier'
    s = [smoothness(r, v) for v in ['none'] + FOURIER[:2]]
    gaps = [paired(r, v, 'none') for v in FOURIER[:2]]
    t = [m / (sd / math.sqrt(2)) for m, sd in gaps]
    says('docs/fourier_head.md',
         f"PMF smoothness {s[0]:.3f} with the linear head, {s[1]:.3f} with N = 16 and {s[2]:.3f} with N = 64",
         f"a loss {min(m for m, _ in gaps):.2f}-{max(m for m, _ in gaps):.2f} nats higher (t = {t[0]:.1f} and {t[1]:.1f}")


def test_supra():
    rows = {'softmax, rotary positions, S = 400 steps': 'softmax', 'converted + 60 steps (15% of S)': 'converted',
            'linear from scratch, 460 steps': 'scratch'}
    for label, v in rows.items():
        t, a = (f"{mean(finals(r, v)):.3f}" for r in ('supra_books', 'supra_piano'))
        says('docs/supra.md', f"| {label} | {t} | {f'**{a}**' if v == 'softmax' else a} |")  # the best audio in bold
    text_haar = [f"{mean(finals('supra_books', v + '_haar')):.3f}" for v in ('softmax', 'converted', 'scratch')]
    audio_haar = [f"{mean(finals('supra_piano', v + '_haar')):.3f}" for v in ('softmax', 'converted', 'scratch')]
    says('docs/supra.md', f"| the same three with `haar` | **{text_haar[0]}** / {text_haar[1]} / **{text_haar[2]}** | "
                          f"{' / '.join(audio_haar)} |")
    b, p = 'supra_books', 'supra_piano'
    fmt = lambda x: f"{x:+.3f}"
    says('results/supra_books/README.md',
         f"the converted models are {paired(b, 'converted', 'softmax')[0]:.2f} (text) and "
         f"{paired(p, 'converted', 'softmax')[0]:.2f} (audio) nats behind their softmax source and "
         f"{paired(b, 'converted', 'scratch')[0]:.2f} / {paired(p, 'converted', 'scratch')[0]:.2f} behind",
         f"on text ({fmt(paired(b, 'scratch', 'softmax')[0])} nats, its 460 steps against softmax's 400; at equal steps, "
         f"400: {fmt(paired(b, 'scratch', 'softmax', 400, 400)[0])}) and worse on audio "
         f"({fmt(paired(p, 'scratch', 'softmax')[0])} at 460; {fmt(paired(p, 'scratch', 'softmax', 400, 400)[0])} at 400)",
         f"(text {fmt(paired(b, 'converted_haar', 'softmax')[0])}, audio {fmt(paired(p, 'converted_haar', 'softmax')[0])}"
         f" against `softmax`)",
         f"(audio: {mean(finals(p, 'softmax')):.3f} vs {mean(finals('piano', 'none')):.3f} nats at step 400)",
         f"text {fmt(paired(b, 'softmax_haar', 'softmax')[0])} nats (vs {paired('books', 'haar', 'none')[0]:.3f} with the "
         f"learned table), audio {fmt(paired(p, 'softmax_haar', 'softmax')[0])} (worse; vs {paired('piano', 'haar', 'none')[0]:.3f})")


def test_quick_supra():
    r = 'quick_supra'
    soft, conv0 = finals(r, 'softmax'), finals(r, 'converted', at=0)
    conv, scratch = mean(finals(r, 'converted')), mean(finals(r, 'scratch'))
    curve = {it: mean([c[it]['val_loss'] for c in curves(r, 'softmax')]) for it in curves(r, 'softmax')[0]}
    where = next(it for it in sorted(curve) if curve[it] <= conv)  # the softmax model's first evaluation at or below
    m, sd = mean(soft), statistics.stdev(soft)
    says('docs/supra.md',
         f"the loss goes from {min(soft):.2f}-{max(soft):.2f} to {min(conv0):.2f}-{max(conv0):.2f} nats "
         f"(uniform: {math.log(27):.2f})",
         f"bring it to {conv:.2f}, where the softmax model was after about {where} steps",
         f"level with softmax ({scratch:.2f} vs {m:.2f} ± {sd:.2f})")


def test_equal_info_table():
    """docs/equal_info.md's table against results/equal_info/table.json (which make_table.py writes from the runs)."""
    with open(os.path.join(ROOT, 'results', 'equal_info', 'table.json')) as f:
        rows = json.load(f)['rows']
    cell = lambda corpus, method, key: next(r[key] for r in rows if r['corpus'] == corpus and r['method'] == method)
    for label, method in (('bytes', 'Bytes'), ('SentencePiece (8,192 pieces)', 'SentencePiece'),
                          ('EqualInfoAC[b=16, v=65k]', 'EqualInfoAC[b=16, v=65k]'),
                          ('EqualInfoAC[b=16, v=256]', 'EqualInfoAC[b=16, v=256]')):
        per_token = f"{cell('pydocs', method, 'bytes_per_token'):.2f} / {cell('books', method, 'bytes_per_token'):.2f}"
        bpb = [f"{cell(c, method, 'bits_per_byte'):.3f}" for c in ('pydocs', 'books')]
        if method == 'SentencePiece':
            bpb = [f"**{x}**" for x in bpb]
        says('docs/equal_info.md', f"| {label} | {per_token} | {bpb[0]} | {bpb[1]} |".replace(
            f"| {label} |", f"| {label} | {cell('pydocs', method, 'v'):,} |"))


def test_equal_info_coder_speed():
    """The best of 3 rounds with both processes, in docs/equal_info.md's table and the README."""
    log = text('results/equal_info/logs/bench_coder_v2.txt')
    speed = {d: float(re.search(rf"\| {d} \| 2 \| ([\d.]+) \|", log)[1]) for d in ('compress', 'decompress')}
    says('docs/equal_info.md', f"| **{speed['compress']:.1f} kB/s** | **{speed['decompress']:.1f} kB/s** |")
    says('README.md', f"compresses at {speed['compress']:.0f} kB/s and decompresses at {speed['decompress']:.0f} kB/s")


def test_music_baseline_is_not_double_rounded():
    """5.3295 in summary.md, 5.32949 in the logs: 5.329 at three decimals."""
    assert f"{bits('midi', 'none'):.3f}" == '5.329'


# ---------------------------------------------------------------- bench.py's timings, from its printed tables

def bench_rows(name):
    """The rows of a bench.py table kept in results/bench/<name>, by their first cell."""
    path = os.path.join(ROOT, 'results', 'bench', name)
    if not os.path.exists(path):
        pytest.skip(f"results/bench/{name} is not committed yet (results/bench/README.md)")
    with open(path, encoding='utf-8') as f:
        rows = [[c.strip() for c in line.strip().strip('|').split('|')] for line in f if line.startswith('|')]
    return {r[0]: r[1:] for r in rows if not set(r[0]) <= set('-')}


def test_speed_training_step():
    rows = bench_rows('train_threads1.txt')
    ms = {v: rows[v][1] for v in ('none', 'haar', 'learnable')}
    ratio = {v: rows[v][2] for v in ms}
    says('README.md', f"| ms / iter (ratio) | " + ' | '.join(f"{ms[v]} ({ratio[v]})" for v in ms) + ' |')
    for v in ms:
        says('docs/speed.md', f"| {v} | {rows[v][0]} | {ms[v]} | {ratio[v]} |")


def test_speed_generation():
    rows = bench_rows('generate_threads1.txt')
    for v in ('none', 'haar', 'learnable'):
        says('docs/speed.md', f"| {v} | {' | '.join(rows[v][:5])} |")
    step = {v: int(rows[v][0].replace(',', '')) for v in ('none', 'haar', 'learnable')}  # decoding step tokens/s
    says('docs/speed.md', *(f"{step['none']} / {step[v]} = {step['none'] / step[v]:.2f}x (`{v}`)" for v in ('haar', 'learnable')))
    before = {v: int(r[0].replace(',', '')) for v, r in bench_rows('generate_threads1_b872cd0.txt').items() if v in step}
    says('docs/speed.md', f"had {before['none'] / before['haar']:.2f}x\nand {before['none'] / before['learnable']:.2f}x")
    rates = sorted(int(rows[v][4].replace(',', '')) for v in ('haar', 'learnable'))  # generate() tokens/s
    says('README.md', f"({rates[0]}-{rates[-1]} tokens/s with the machine otherwise idle")


def test_speed_wavelet_forms():
    rows = bench_rows('wavelet.txt')
    for form, cells in rows.items():
        if form != 'form':
            says('docs/speed.md', f"| {form.replace('MovingAverage', '`MovingAverage`')} | {cells[0]} |")


def test_speed_counted_calls():
    """docs/speed.md's table of bench.py --mode=ops, row by row, as results/bench/ops.txt printed it."""
    rows = bench_rows('ops.txt')
    for v in ('none', 'haar', 'learnable'):
        says('docs/speed.md', f"| {v} | {' | '.join(rows[v])} |")


def test_speed_rope_counts():
    """docs/speed.md's calls of RoPE's variants, now and before it was computed once a step, from both tables."""
    now, before = bench_rows('ops_rope.txt'), bench_rows('ops_rope_f3c3856.txt')
    rope, linear = 'position=rope', 'attention=linear+position=rope'
    calls = lambda rows, v: (rows[v][5], f"{int(rows[v][0]):,}")  # decoding step, eager training step
    says('docs/speed.md', "{} calls a decoding step, {} a training step".format(*calls(before, rope)),
         "{} and {}".format(*calls(now, rope)), "{} and {}, from {} and {}".format(*calls(now, linear), *calls(before, linear)))


def test_speed_fourier_heads():
    rows = bench_rows('fourier_heads.txt')
    labels = {'none': 'linear head', 'head=fourier+fourier_freqs=16': 'Fourier, N = 16',
              'head=fourier+fourier_freqs=64': 'Fourier, N = 64', 'head=fourier+fourier_freqs=128': 'Fourier, N = 128'}
    for v, label in labels.items():
        says('results/fourier/README.md', f"| {label} | {rows[v][1]} | {rows[v][2]} |")


def wall_time(path):
    """'8 min 27 s', and the load averages before and after (the first number of each uptime line) of a run.txt."""
    run = text(path)
    seconds = int(re.search(r'wall_s (\d+)', run)[1])
    loads = re.findall(r'load average: ([\d.]+),', run)
    return f"{seconds // 60} min {seconds % 60} s", loads[0], loads[-1]


def test_quick_comparison_times():
    took, before, after = wall_time('results/quick_fourier/run.txt')
    says('docs/fourier_head.md', f"{took} on 2 shared AMD EPYC cores with other jobs running (load average {before} "
                                 f"before, {after} after;")
    took, before, after = wall_time('results/quick_supra/run.txt')
    says('docs/supra.md', f"{took} on 2 shared AMD EPYC cores (load average {before} before, {after} after;")


def test_quick_start():
    with open(os.path.join(ROOT, 'results', 'quickstart', 'log.jsonl')) as f:
        final = [json.loads(line) for line in f][-1]['val_loss']
    seconds = float(re.search(r'wall ([\d.]+) s', text('results/quickstart/train_threads1.txt'))[1])
    says('README.md', f"(validation loss {final:.3f} nats = {final / LN2:.2f} bits per character)",
         f"it took {int(seconds) // 60} min {round(seconds) % 60} s with `--threads=1`")


def test_positions_table():
    """results/supra_positions/README.md's ranges, from the table beside it (ms per token, each row 128 positions)."""
    rows = [[float(c) for c in line.strip('| \n').split('|')[1:]] for line in
            open(os.path.join(ROOT, 'results', 'supra_positions', 'table.md')) if re.match(r'\| \d', line)]
    softmax, softmax_haar, linear, linear_haar = zip(*rows)
    added = [b - a for a, b in zip(softmax + linear, softmax_haar + linear_haar)]
    says('results/supra_positions/README.md',
         f"the softmax rows are the fastest, {min(softmax):.2f}-{max(softmax):.2f} ms against {min(linear):.2f}-"
         f"{max(linear):.2f} ms for linear attention; the wavelet adds {min(added):.2f}-{max(added):.2f} ms to either")


def test_long_comparisons_times():
    """'about 30 minutes' and 'about 1.5 hours': the runs' own times (the last `time` of each log) added up."""
    def total(results):
        return sum(json.loads(open(f).readlines()[-1])['time']
                   for f in glob.glob(os.path.join(ROOT, 'results', results, 'runs', '*', 'seed*', 'log.jsonl')))
    for results in ('books', 'piano', 'midi'):
        assert round(total(results) / 600) * 10 == 30, results
    for results in ('fourier', 'supra_piano'):
        assert round(total(results) / 1800) / 2 == 1.5, results
    says('README.md', 'python compare.py config/compare_books.py # the text runs below, about 30 minutes')
    says('docs/wavelet.md', '# the runs below, about 30 minutes per dataset')
    says('docs/fourier_head.md', '# the table below, about 1.5 hours on 2 CPU cores')
    says('docs/supra.md', '`python compare.py config/compare_supra_piano.py` makes it first (about 1.5 hours')


def test_wavelet_prose():
    """docs/wavelet.md's and docs/supra.md's sentences on the same runs."""
    gaps = {r: paired(r, 'haar', 'none') for r in ('books', 'piano', 'midi')}
    sizes = [-m for m, _ in gaps.values()]
    spreads = [-m / sd for m, sd in gaps.values()]
    says('docs/wavelet.md', f"by {min(sizes):.2f} to {max(sizes):.2f} nats: {min(spreads):.0f} to "
                            f"{round(max(spreads), -1):.0f} times the seed-to-seed spread")
    kept = [1 - paired(r, 'haar+wavelet_window=32', 'haar')[0] / -paired(r, 'haar', 'none')[0]
            for r in ('books_ablation', 'piano_ablation')]
    assert round(kept[0] * 5) == 1 and round(kept[1] * 5) == 2, kept  # 'a fifth of the gain on text, two fifths on audio'
    says('docs/wavelet.md', 'keeps a fifth of the gain on text, two fifths on audio')
    behind = [paired(r, 'converted', v)[0] for r in ('supra_books', 'supra_piano') for v in ('softmax', 'scratch')]
    assert (round(min(behind), 1), round(max(behind), 1)) == (0.2, 0.3), behind
    says('README.md', '(60 steps after conversion, the model is 0.2-0.3 nats behind both)')
    says('docs/supra.md', 'the converted model is 0.2-0.3 nats behind both its source and the scratch model',
         f"(audio {mean(finals('supra_piano', 'softmax')):.3f} vs {mean(finals('piano', 'none')):.3f} nats)",
         f"(text {paired('supra_books', 'softmax_haar', 'softmax')[0]:+.3f}; "
         f"audio {paired('supra_piano', 'softmax_haar', 'softmax')[0]:+.3f})",
         f"{paired('supra_books', 'converted_haar', 'softmax')[0]:+.3f} nats against softmax on text")


def test_equal_info_coder_version_2():
    """results/equal_info/README.md's and docs/equal_info.md's numbers of coder version 2, from what its commands
    printed (logs/prepare_pydocs_ei16_v2.txt, logs/decode_pydocs_ei16_v2.json)."""
    prepared = text('results/equal_info/logs/prepare_pydocs_ei16_v2.txt')
    splits = {m[0]: m for m in re.findall(r'(train|val|test): ([\d,]+) bytes -> ([\d,]+) windows, [\d.]+ bytes per window; '
                                          r'M1 ([\d.]+) bits per byte inside the windows; ([\d,]+) bytes/s', prepared)}
    with open(os.path.join(ROOT, 'results', 'equal_info', 'logs', 'decode_pydocs_ei16_v2.json')) as f:
        decoded = json.load(f)
    train = splits['train']
    says('results/equal_info/README.md',
         f"split into {train[2]} / {splits['val'][2]} / {splits['test'][2]} windows, M1 {float(train[3]):.2f} bits per byte",
         f"with {decoded['mismatched_windows']} of {decoded['windows']:,} windows different",
         f"compressed at {int(train[4].replace(',', '')) / 1000:.0f} kB/s and decompressed at "
         f"{decoded['bytes_per_second'] / 1000:.0f} kB/s")
    says('docs/equal_info.md', f"{decoded['mismatched_windows']} of {decoded['windows']:,} windows differ",
         f"--check=True`, {decoded['seconds']:.0f} s;")


def test_equal_info_laptop_pipeline():
    """docs/equal_info.md "On a laptop" against what its nine commands printed (results/equal_info/laptop/)."""
    folder = os.path.join('results', 'equal_info', 'laptop')
    steps = sorted(f for f in os.listdir(os.path.join(ROOT, folder)) if re.match(r'\d_.*\.txt$', f))
    walls = {f: float(re.search(r'# exit 0, wall ([\d.]+) s', text(os.path.join(folder, f)))[1]) for f in steps}
    assert len(steps) == 9
    total = round(sum(walls.values()))
    for f, comment in (('1_excerpt.txt', '{} s: 300 kB of text'), ('3_train_m1.txt', 'M1: {} s'),
                       ('4_equal_info.txt', 'pydocs300k_ei16   # {} s'), ('6_decode.txt', '--check=True # {} s'),
                       ('8_train_m2_bytes.txt', '--threads=1 # {} s'), ('9_train_m2_ei8.txt', '--threads=1 # {} s')):
        says('docs/equal_info.md', comment.format(round(walls[f])))
    val = re.search(r'val: [\d,]+ bytes -> ([\d,]+) windows, ([\d.]+) bytes per window; M1 ([\d.]+) bits per byte',
                    text(os.path.join(folder, '4_equal_info.txt')))
    differ = re.search(r'(\d+) of ([\d,]+) windows differ; identical', text(os.path.join(folder, '6_decode.txt')))
    bpb = {kind: float(re.findall(r'final val loss [\d.]+ \([\d.]+ bits/token, ([\d.]+) bits/byte\)',
                                  text(os.path.join(folder, f)))[-1])
           for kind, f in (('bytes', '8_train_m2_bytes.txt'), ('ei8', '9_train_m2_ei8.txt'))}
    per_window = float(val[2])
    says('docs/equal_info.md', f"{total // 60} min {total % 60} s in all",
         f"a window of 16 bits holds {per_window:.2f} bytes of the validation text (M1 spends {float(val[3]):.2f} bits "
         f"per byte inside the windows)", f"({differ[1]} of {differ[2]} windows differ)",
         f"{bpb['ei8']:.2f} bits per byte on EqualInfoAC[b=16, v=256], where a uniform guess would give 16 / "
         f"{per_window:.2f} = {16 / per_window:.2f}", f"the byte baseline reads the text better, {bpb['bytes']:.2f} bits per byte")
    assert differ[2] == val[1]


def test_quick_comparison_time():
    seconds = int(re.search(r'wall_s (\d+)', text('results/quick/run.txt'))[1])
    load = float(re.findall(r'load average: ([\d.]+),', text('results/quick/run.txt'))[-1])
    says('README.md', f"a tiny model: {seconds / 60:.1f} minutes at load {load:.0f} (results/quick/run.txt)")
    says('docs/wavelet.md', f"# {seconds / 60:.1f} minutes at load {load:.0f} (../results/quick/run.txt)")


def test_parameter_counts():
    """docs/wavelet.md's parameter counts of the paper's model, counted from the model itself."""
    from model import GPT, GPTConfig
    paper = dict(n_layer=10, n_head=8, n_embd=128, block_size=512, vocab_size=27)
    count = lambda **kw: GPT(GPTConfig(**paper, **kw)).get_num_params()  # no position table, as nanoGPT counts
    none, haar, learnable, capped = count(), count(wavelet='haar'), count(wavelet='learnable'), \
        count(wavelet='learnable', wavelet_max_kernel=32)
    assert none == haar
    says('docs/wavelet.md', f"`none` and `haar` {none:,}; `learnable` {learnable:,} (+{learnable - none:,};",
         f"which `wavelet_max_kernel=32` gives: +{capped - none:,})")


def test_equal_info_window_rule():
    """docs/equal_info.md's limit of the window rule: its command's output, and pydocs' windows from the v2 log."""
    from equal_info.windows import encode_window
    value, kept, fraction = encode_window([(300, 16200)] * 16, 16)
    says('docs/equal_info.md', f"prints `({value}, {kept}, {fraction:.3f})`")
    train = re.search(r'train: [\d,]+ bytes -> [\d,]+ windows, ([\d.]+) bytes per window; M1 ([\d.]+) bits per byte',
                      text('results/equal_info/logs/prepare_pydocs_ei16_v2.txt'))
    per_window, m1 = float(train[1]), float(train[2])
    says('docs/equal_info.md', f"On pydocs a window holds {per_window:.2f} bytes at M1's {m1:.2f} bits per byte: "
                               f"{per_window * m1:.1f} of its 16 bits")
    with open(os.path.join(ROOT, 'results', 'equal_info', 'logs', 'decode_pydocs_ei16.json')) as f:
        says('docs/equal_info.md', f"{round(json.load(f)['seconds'] / 60)} minutes with version 1")


def test_supra_decays_are_the_logged_ones():
    with open(os.path.join(ROOT, 'results', 'supra_books', 'runs', 'converted', 'seed1', 'log.jsonl')) as f:
        decays = json.loads(f.readline())['decays']
    says('results/supra_books/README.md', f"({', '.join(f'{g:.3f}' for g in decays)} for 8 heads)")


def test_claims_against_the_paper():
    match = {r: steps_to_match(r, 'haar').split()[0] for r in ('books', 'piano', 'midi')}
    says('README.md', f"holds **partly** ({match['piano']} on audio, {match['books']} on text, {match['midi']} on music;")
    says('docs/wavelet.md', f"**partly.** {match['piano']} on audio, as claimed; {match['books']} on text (faster); "
                            f"{match['midi']} on music (slower)")
    text_gain, audio_gain = (paired(r, 'learnable', 'haar')[0] for r in ('books', 'piano'))
    assert f"{-text_gain:.3f}" == f"{-audio_gain:.3f}"
    m, sd = paired('midi', 'learnable', 'haar')
    says('docs/wavelet.md', f"**held on text and audio** ({-text_gain:.3f} nats, far outside the spread)",
         f"**not shown on music** ({-m:.3f} ± {sd:.3f}: within the noise)")


def test_time_columns_spread():
    """results/README.md: the same runs' ms/step in two comparisons, from their summary.json."""
    def ms(results, variant):
        with open(os.path.join(ROOT, 'results', results, 'summary.json')) as f:
            return json.load(f)[variant]['step_ms']
    most = max(ms(r, v) / ms(r + '_ablation', v) for r in ('books', 'piano') for v in ('none', 'haar'))
    says('results/README.md', f"differ by up to a factor of {most:.1f} between comparisons (`none` on books: "
                              f"{ms('books', 'none'):.0f} ms/step in `books/summary.json`, "
                              f"{ms('books_ablation', 'none'):.0f} in")


def test_the_suite_time():
    """README's time of the test suite, from the closing line of the kept .ci/run output."""
    seconds = float(re.search(r'in ([\d.]+)s', text('results/tests/ci_run.txt'))[1])
    says('README.md', f"{int(seconds) // 60} min {round(seconds) % 60} s on this project's 2-core x86_64 VM")

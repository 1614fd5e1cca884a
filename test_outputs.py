"""
Nothing a user owns is ever replaced, and a request that cannot be met stops before any work, tried
through the real command lines: output paths (outputs.py) of every script that writes, what
prepare/*.py --out may replace, places that cannot be written, damaged Equal-Info datasets, huge
numbers, compare.py's variants and labels, input that is not UTF-8, settings that were dropped.
Each refusal: exit code 1, stderr one line 'error: ...' and no traceback, nothing on stdout (no work
began: most cases would run for minutes once it did), and every file and folder as it was, none new.
"""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch

from checkpoints import save_checkpoint
from conftest import _make_text_dataset
from dataset import write_dataset
from model import GPT, GPTConfig
from test_failures import TINY, tiny_run, train_here, world  # noqa: F401 (world: the user's folder, a fixture)
from tokens.bytes import Bytes
from equal_info.coder import EqualInfo

MEMORY = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')  # bytes
LONG = ['--max_new_tokens=100000000', '--device=cpu']  # hours of generation, had it begun
TEXT, AUDIO = ['sample.py', '--out_dir=out/text'] + LONG, ['sample.py', '--out_dir=out/audio'] + LONG
COMPARE = ['compare.py', '--results=results/new', '--seeds=1'] + TINY


def tree(root):
    """{path: sha256 of a file, or 'folder'} of everything under root."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(folder, d), root)] = 'folder'
        for f in files:
            with open(os.path.join(folder, f), 'rb') as fh:
                out[os.path.relpath(os.path.join(folder, f), root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def assert_refused(run_scripts, root, cases):
    """Each case [(argv, words)] run in root exits 1 with stderr one line, 'error: ...<words>...', no traceback,
    nothing on stdout; afterwards every file and folder under root is as it was, and there is nothing new."""
    before = tree(root)
    results = run_scripts([argv for argv, _ in cases], root)
    problems = []
    for (argv, words), (code, out, err) in zip(cases, results):
        one_line = err.strip().count('\n') == 0 and err.startswith('error: ')
        if code != 1 or not one_line or 'Traceback' in err or out.strip() or words.lower() not in err.lower():
            problems.append(f"{' '.join(argv)}\n    exit {code}, wanted {words!r}; stdout {out[-300:]!r}; stderr {err[-600:]!r}")
    assert not problems, '\n'.join(problems)
    assert tree(root) == before


def save_m1(path):
    """A tiny byte-level M1 checkpoint (untrained: enough for the checks before coding)."""
    model = GPT(GPTConfig(block_size=16, vocab_size=257, n_layer=1, n_head=2, n_embd=16))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_checkpoint(str(path), {'model': model.state_dict(), 'model_args': vars(model.config), 'meta': Bytes.facts()})


def equal_info_dataset(folder, m1, rows=2):
    """An Equal-Info dataset in form (random windows, made by no M1), whose meta.json names m1."""
    rng = np.random.default_rng(0)
    splits = {'train': rng.integers(0, 65536, 400), 'val': rng.integers(0, 65536, 100)}
    meta = dict(EqualInfo.facts(m1, rows=rows), byte_counts={'dtype': 'uint8', 'tokens_per_count': 1}, start=[1],
                source='in.txt', prepare='python prepare/equal_info.py --input in.txt --m1 m1.pt')
    extras = {}
    for split, ids in splits.items():
        extras[f'{split}.bytes.bin'] = rng.integers(1, 5, len(ids)).astype(np.uint8)
        extras[f'{split}.streams.bin'] = np.array([len(ids) // 2, len(ids) - len(ids) // 2], dtype=np.uint32)
    write_dataset(str(folder), splits, meta, extras)


@pytest.fixture(scope='module')
def owned(world):
    """The user's folder, with more of what is theirs: a folder of notes, a dataset with a note in it, an earlier
    sample and plot, a .bin file, text that is not UTF-8 or is blank, a byte-level M1, Equal-Info datasets
    (damaged ones among them) and a model of one, another dataset of 27 tokens, and comparisons' logs."""
    (world / 'notes').mkdir()
    (world / 'notes' / 'notes.txt').write_text('mine')
    shutil.copytree(world / 'data' / 'tiny', world / 'data' / 'withnotes')
    (world / 'data' / 'withnotes' / 'notes.txt').write_text('mine too')
    (world / 'out' / 'audio' / 'sample.wav').write_bytes(b'an earlier sample')
    for name in ('plot.png', 'x_1.txt', 'tokens.bin'):
        (world / 'p' / name).write_bytes(b'mine')
    (world / 'p' / 'latin1.txt').write_bytes('caf\xe9 cr\xe8me, na\xefve '.encode('latin-1') * 50)
    (world / 'p' / 'blank.txt').write_text(' \n\t \n' * 20)
    (world / 'p' / 'short.txt').write_text('ab')
    save_m1(world / 'out' / 'm1' / 'ckpt.pt')
    m1 = {'path': str(world / 'out' / 'm1' / 'ckpt.pt'), 'hash': 'not-its-hash', 'numbers': 'not-its-numbers'}
    equal_info_dataset(world / 'data' / 'ei', m1)
    equal_info_dataset(world / 'data' / 'ei_moved', dict(m1, path=str(world / 'nowhere' / 'ckpt.pt')))
    for damage in ('missing', 'short', 'edited', 'meta'):
        equal_info_dataset(world / 'data' / f'ei_{damage}', m1)
        streams, meta = (world / 'data' / f'ei_{damage}' / name for name in ('val.streams.bin', 'meta.json'))
        {'missing': streams.unlink, 'short': lambda: streams.write_bytes(streams.read_bytes()[:5]),
         'edited': lambda: streams.write_bytes(np.array([7, 7], dtype=np.uint32).tobytes()),
         'meta': lambda: meta.write_text(meta.read_text().replace('"rows"', '"lines"'))}[damage]()
    tiny_run(world, 'out/ei', dataset='ei')
    _make_text_dataset(str(world), name='music27', dtype='uint16', vocab=27)
    for name, loss in (('folders', 2.0), ('nan', float('nan'))):
        log = world / 'results' / name / 'runs' / 'none' / 'seed1' / 'log.jsonl'
        log.parent.mkdir(parents=True)
        log.write_text(json.dumps({'config': {'dataset': 'tiny', 'n_layer': 1, 'n_embd': 8, 'block_size': 8,
                                               'batch_size': 2, 'max_iters': 10}, 'params': 10}) + '\n' +
                       ''.join(json.dumps({'iter': i, 'val_loss': l, 'step_ms': 1.0}) + '\n'
                               for i, l in ((0, 3.0), (10, loss))))
    (world / 'results' / 'folders' / 'summary.md').mkdir()
    (world / 'results' / 'folders' / 'curves.png').mkdir()
    return world


# ---------------------------------------------------------------- data loss

# inputs that are not there: had a script read them before it checked --out, it would fail on them instead
PREPARE = [['prepare/text8.py', '--input', 'p/missing.txt'], ['prepare/bytes.py', '--input', 'p/missing.txt'],
           ['prepare/spm.py', '--input', 'p/missing.txt'], ['prepare/bpe.py', '--input', 'p/missing.txt'],
           ['prepare/equal_info.py', '--input', 'p/missing.txt', '--m1', 'out/missing/ckpt.pt'],
           ['prepare/maestro.py', '--input', 'p/missing'], ['prepare/youtubemix.py', '--input', 'p/missing'],
           ['prepare/pydocs.py']]


def test_prepare_replaces_nothing_but_a_dataset(owned, run_scripts):
    """--out of every prepare script: a folder of the user's files, a file, a dataset that holds a file of the
    user's, a link, or a place under a file are refused before any work; only a dataset (or nothing) is replaced."""
    os.symlink('tiny', owned / 'data' / 'link')
    cases = []
    for argv in PREPARE:
        cases += [(argv + ['--out', 'notes'], 'holds no dataset of this project'),
                  (argv + ['--out', 'p/text.txt'], 'is a file; nothing but a dataset is replaced'),
                  (argv + ['--out', 'data/withnotes'], 'holds notes.txt, which a dataset does not have'),
                  (argv + ['--out', 'data/link'], 'is a symbolic link'),
                  (argv + ['--out', 'p/text.txt/new'], 'is a file, not a folder')]
    try:
        assert_refused(run_scripts, owned, cases)
    finally:
        os.remove(owned / 'data' / 'link')


def test_outputs_never_replace_a_checkpoint_a_dataset_or_a_file(owned, run_scripts):
    """sample.py, decode.py, plot_pmfs.py, bench.py: a checkpoint or a dataset's file never, with --overwrite=True
    or not; any other file that exists only with --overwrite=True; each checked before loading or generating."""
    nothing = ['sample.py', '--out_dir=new/none'] + LONG  # no checkpoint there: the output is checked before loading
    decode = ['decode.py', '--data=data/nosuch']             # no dataset: the output is checked before reading it
    cases = [(nothing + ['--output=out/text/ckpt.pt', '--overwrite=True'], 'it is a checkpoint'),
             (nothing + ['--output=data/tiny/val.bin', '--overwrite=True'], "in a dataset's folder"),
             (nothing + ['--output=data/tiny/sample.txt'], "in a dataset's folder"),
             (nothing + ['--output=p/tokens.bin', '--overwrite=True'], "a .bin file"),
             (nothing + ['--output=p/text.txt'], 'p/text.txt exists; replace it with --overwrite=True'),
             (nothing + ['--output=p/x.txt', '--num_samples=2'], 'p/x_1.txt exists'),
             (AUDIO, 'out/audio/sample.wav exists'),  # the default output, an earlier sample
             (decode + ['--output=out/text/ckpt.pt', '--overwrite=True'], 'it is a checkpoint'),
             (decode + ['--output=data/tiny/val.bin', '--overwrite=True'], "in a dataset's folder"),
             (decode + ['--report=data/ei/report.json'], "in a dataset's folder"),
             (decode + ['--output=p/text.txt'], 'exists; replace it with --overwrite=True'),
             (decode + ['--output=p/a.txt', '--report=p/a.txt'], 'give each its own file'),
             (AUDIO + ['--output=p/new.mid'], 'this audio model writes .wav files, not .mid'),  # a name of another kind
             (TEXT + ['--output=p/new.wav'], 'this text model writes .txt files, not .wav'),
             (TEXT[:2] + ['--max_new_tokens=5', '--start=FILE:p/text.txt', '--output=p/text.txt', '--overwrite=True'],
              'an input is never written'),  # a few tokens: without the check, the prompt file is written over
             (AUDIO[:2] + ['--max_new_tokens=5', '--start=FILE:out/audio/sample.wav', '--overwrite=True'],
              'is --start out/audio/sample.wav'),
             (['plot_pmfs.py', '--runs=new/none', '--output=out/text/ckpt.pt', '--overwrite=True'], 'name it x.png'),
             (['plot_pmfs.py', '--runs=new/none', '--output=p/plot.png'], 'exists'),
             (['bench.py', '--mode=positions', '--plot=p/plot.png'], 'p/plot.png exists')]
    assert_refused(run_scripts, owned, cases)


def test_overwrite_true_replaces_an_ordinary_file(owned, run_script, tmp_path):
    (tmp_path / 'data').symlink_to(owned / 'data')
    (tmp_path / 'out').symlink_to(owned / 'out')
    (tmp_path / 'mine.txt').write_text('mine')
    r = run_script(['sample.py', '--out_dir=out/text', '--max_new_tokens=5', '--device=cpu', '--output=mine.txt',
                    '--overwrite=True'], tmp_path)
    assert r.returncode == 0 and (tmp_path / 'mine.txt').read_text() != 'mine', r.stderr


def test_a_dataset_is_replaced_only_by_one_of_its_kind_and_an_input_is_never_an_output(owned, run_scripts):
    """prepare/*.py --out over a dataset that another script made (text becomes audio), --out that is an input or
    inside an input's folder (--regroup X --out X, excerpt --overwrite over its own --input): refused before any work."""
    cases = [(['prepare/tones.py', '--out', 'data/tones'], 'another kind (made by prepare/youtubemix.py, not '
                                                              'prepare/tones.py)'),
             (['prepare/text8.py', '--input', 'p/text.txt', '--out', 'data/tones'], 'another kind'),
             (['prepare/equal_info.py', '--regroup', 'data/ei', '--token_bits', '8', '--out', 'data/ei'],
              '--out data/ei is --regroup data/ei: an input is never written'),
             (['prepare/text8.py', '--input', 'p', '--out', 'p/books'], 'is inside --input p'),
             (['prepare/excerpt.py', '--input', 'p/text.txt', '--out', 'p/text.txt', '--overwrite'],
              'an input is never written'),
             (['prepare/excerpt.py', '--input', 'p', '--out', 'p/new.txt', '--overwrite'], 'is inside --input p')]
    assert_refused(run_scripts, owned, cases)


def test_a_new_run_never_empties_a_log_it_cannot_prove_it_may_replace(owned, run_scripts):
    """train.py from scratch in an out_dir with a log.jsonl but no ckpt.pt (the user's file of that name, or a run whose
    checkpoint was deleted to save space): refused before any work, the user's file with --overwrite=True too."""
    for name, text in (('mylog', 'my notes\n'), ('nockpt', (owned / 'out' / 'text' / 'log.jsonl').read_text())):
        (owned / 'out' / name).mkdir()
        (owned / 'out' / name / 'log.jsonl').write_text(text)
    (owned / 'out' / 'mylog' / 'ckpt.pt.tmp').write_text('mine too')  # named as a partial checkpoint, not one
    (owned / 'out' / 'mylock').mkdir()
    (owned / 'out' / 'mylock' / 'train.lock').write_text('mine as well')  # named as a run's lock, not one
    cases = [(['train.py', '--out_dir=out/mylog'] + TINY, 'out/mylog/log.jsonl exists and is not a log that train.py'),
             (['train.py', '--out_dir=out/mylog', '--overwrite=True'] + TINY, 'is not a log that train.py wrote'),
             (['train.py', '--out_dir=out/mylock'] + TINY, 'out/mylock/train.lock is not a lock of this project'),
             (['train.py', '--out_dir=out/nockpt'] + TINY, 'holds the log of a run whose checkpoint is gone; replace '
                                                           'it with --overwrite=True')]
    assert_refused(run_scripts, owned, cases)


def test_a_run_is_written_only_into_what_the_project_wrote(owned, run_scripts):
    """A red-team pass found these: resuming appended to a log.jsonl of the user's beside a real checkpoint; a
    new run with --overwrite=True replaced a file of the user's named ckpt.pt that is no checkpoint; sample.py
    --overwrite=True wrote its text over a run's log.jsonl. Each refused now, before any work, files unchanged."""
    run = owned / 'out' / 'text'
    (owned / 'out' / 'theirlog').mkdir()
    shutil.copy(run / 'ckpt.pt', owned / 'out' / 'theirlog' / 'ckpt.pt')
    (owned / 'out' / 'theirlog' / 'log.jsonl').write_text('my notes\n')
    (owned / 'out' / 'theirckpt').mkdir()
    (owned / 'out' / 'theirckpt' / 'ckpt.pt').write_text('not a checkpoint')
    cases = [(['train.py', '--out_dir=out/theirlog', '--init_from=resume', '--max_iters=12'] + TINY,
              'out/theirlog/log.jsonl is not a log that train.py wrote, and resuming would write into it'),
             (['train.py', '--out_dir=out/theirckpt', '--overwrite=True'] + TINY,
              'out/theirckpt/ckpt.pt exists and is no checkpoint'),
             (['sample.py', '--out_dir=out/text', '--max_new_tokens=5', '--output=out/text/log.jsonl',
               '--overwrite=True', '--device=cpu'], "it is a run's log.jsonl"),
             # an output never inside an input: a run's out_dir in a dataset, a comparison in a run it reads
             (['train.py', '--out_dir=data/tiny/run'] + TINY, "is in a dataset's folder"),
             (['compare.py', '--runs=out/text,out/theirlog', '--results=out/text/cmp'], 'is inside'),
             (['compare.py', '--runs=out/text,out/theirlog', '--results=data/tiny/cmp'], 'is inside'),
             # resumed on another dataset that is built on first use: refused before building it (the tree is unchanged)
             (['train.py', '--out_dir=out/text', '--init_from=resume'] + TINY[1:] + ['--dataset=pydocs', '--max_iters=9'],
              "was trained on 'tiny', not 'pydocs'; drop --dataset")]
    assert_refused(run_scripts, owned, cases)


def test_leftovers_are_known_by_their_marker_never_by_their_name(run_script, tmp_path):
    """Folders beside --out named as a rebuild's leftovers (data/books.old-2019, a backup; .tmp-<pid>) are the
    user's unless the marker a rebuild writes inside is there: never deleted, never renamed into --out."""
    (tmp_path / 'book.txt').write_text('the cat sat on the mat and the dog ran far away. ' * 400)
    for name in ('books.old-2019', 'books.tmp-999999999', 'books.old-999999998'):
        (tmp_path / 'data' / name).mkdir(parents=True)
        (tmp_path / 'data' / name / 'meta.json').write_text('{"version": 1, "tokens": {}}')
        (tmp_path / 'data' / name / 'notes.txt').write_text('mine')
    mine = tree(tmp_path / 'data')
    stale = tmp_path / 'data' / 'books.tmp-999999997'  # what a killed rebuild leaves: marked, so removed
    stale.mkdir()
    (stale / '.written_by_prepare.json').write_text(json.dumps({'by': 'dataset.write_dataset', 'folder': str(stale)}))
    for _ in range(2):  # --out missing (a leftover would be put back there), then there
        r = run_script(['prepare/text8.py', '--input', 'book.txt', '--out', 'data/books'], tmp_path)
        assert r.returncode == 0, r.stderr
        assert {k: v for k, v in tree(tmp_path / 'data').items() if not k.startswith('books/')} == dict(mine, books='folder')
    assert not {'.written_by_prepare.json', 'notes.txt'} & set(os.listdir(tmp_path / 'data' / 'books'))


# ---------------------------------------------------------------- tracebacks and late failures

def test_places_that_cannot_be_written_are_refused_before_the_work(owned, run_scripts):
    cases = [(['sample.py', '--out_dir=new/none', '--output=p/text.txt/x.txt'] + LONG, 'is a file, not a folder'),
             (AUDIO + ['--output=missing/x.wav'], 'does not exist'),
             (['decode.py', '--data=data/nosuch', '--output=p/text.txt/x.txt'], 'is a file, not a folder'),
             (['decode.py', '--data=data/nosuch', '--report=p/text.txt/r.json'], 'is a file, not a folder'),
             (['plot_pmfs.py', '--runs=new/none', '--output=p/text.txt/x.png'], 'is a file, not a folder'),
             (['prepare/equal_info.py', '--input', 'p/missing.txt', '--m1', 'x.pt', '--out', 'p/text.txt/ei'],
              'is a file, not a folder'),
             (['bench.py', '--mode=positions', '--plot=p'], 'name it x.png'),
             (COMPARE + ['--variants=none', '--results=p/text.txt'], 'is a file'),
             (COMPARE + ['--variants=none', '--results=notes'], 'holds files of its own'),
             (['compare.py', '--replot=True', '--results=results/folders'], 'summary.md: it is a folder'),
             (['train.py', '--out_dir=new/run', '--init_from=resume'] + TINY, 'does not exist'),
             (['train.py', '--out_dir=data/tiny'] + TINY, "is a dataset's folder")]
    assert_refused(run_scripts, owned, cases)


@pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() == 0, reason='root may write into a read-only folder')
def test_a_read_only_folder_is_refused_before_the_work(owned, run_scripts, tmp_path):
    shutil.copytree(owned / 'out' / 'audio', tmp_path / 'ro')
    (tmp_path / 'ro' / 'sample.wav').unlink()
    (tmp_path / 'data').symlink_to(owned / 'data')
    (tmp_path / 'p').symlink_to(owned / 'p')
    os.chmod(tmp_path / 'ro', 0o555)
    try:
        assert_refused(run_scripts, tmp_path, [
            (['sample.py', '--out_dir=ro'] + LONG, 'is not writable'),
            (['prepare/text8.py', '--input', 'p/text.txt', '--out', 'ro/data'], 'is not writable')])
    finally:
        os.chmod(tmp_path / 'ro', 0o755)


def test_equal_info_datasets_damaged_regrouped_or_without_their_m1(owned, run_scripts):
    cases = [(['prepare/equal_info.py', '--regroup', 'data/ei', '--bits', '32', '--out', 'new/x'],
              '--bits 32: --regroup keeps the windows'),
             (['decode.py', '--data=data/ei_missing'], 'val.streams.bin is missing: the Equal-Info dataset is damaged'),
             (['decode.py', '--data=data/ei_short'], 'holds 5 bytes'),
             (['decode.py', '--data=data/ei_edited'], 'does not add up to the 100 windows'),
             (['decode.py', '--data=data/ei_meta'], 'has no whole number for rows'),
             (['prepare/equal_info.py', '--regroup', 'data/ei_edited', '--token_bits', '8', '--out', 'new/x'],
              'rebuild it with: python prepare/equal_info.py'),
             (['decode.py', '--data=data/ei'], 'is not the M1 these tokens were made with'),
             (['decode.py', '--data=data/ei_moved'], 'is not at'),
             (['sample.py', '--out_dir=out/ei'] + LONG, 'is not the M1 these tokens were made with'),
             (['decode.py', '--data=data/ei_copy'], 'rebuild it with: python prepare/equal_info.py --input in.txt '
                                                    '--m1 m1.pt --out data/ei_copy')]  # where it is now, not was built
    if not (owned / 'data' / 'ei_copy').exists():
        shutil.copytree(owned / 'data' / 'ei_edited', owned / 'data' / 'ei_copy')
    assert_refused(run_scripts, owned, cases)


def test_huge_numbers_and_misleading_messages(owned, run_scripts):
    train = ['train.py', '--out_dir=new/run'] + TINY
    cases = [(train + ['--dataset=tones', '--head=fourier', '--fourier_freqs=1000000'], 'fourier_freqs=1000000'),
             (train + ['--dataset=tones', '--head=fourier', '--fourier_freqs=600'], "twice the Fourier head's 256 bins"),
             (train + ['--n_embd=1048576', '--n_head=1'], 'not enough memory for this model'),
             (train + ['--batch_size=1000000000000'], 'lower batch_size'),
             (train + ['--eval_iters=1000000000000'], 'or eval_iters'),
             (train + ['--sample_tokens=100000000000'], 'lower sample_tokens'),  # was a traceback after training
             (TEXT[:2] + ['--max_new_tokens=100000000000000000000', '--device=cpu'], 'not enough memory'),
             (AUDIO[:2] + ['--seconds=1e16', '--output=p/new.wav', '--device=cpu'], 'not enough memory'),
             (train + ['--dataset=tones', '--head=fourier', '--fourier_bins=1'], 'needs 2 bins or more'),
             (train + ['--fourier_reg=nan'], 'fourier_reg=nan: use a finite number'),
             (TEXT + ['--temperature=inf'], 'temperature=inf: use a finite number'),
             # their ids fit (the old check), the cache and a forward of so many sequences do not
             (TEXT[:2] + [f'--num_samples={MEMORY // 100}', '--max_new_tokens=1', '--device=cpu'], 'not enough memory'),
             (TEXT[:2] + ['--num_samples=100000000', '--max_new_tokens=1', '--output=p/many.txt'], 'not enough memory'),
             (['plot_pmfs.py', '--runs=out/audio', '--rows=100000', '--output=p/new.png'], 'rows=100000: use'),
             (['prepare/equal_info.py', '--input', 'p/prose.txt', '--m1', 'out/m1/ckpt.pt', '--rows', '100000',
               '--out', 'new/ei'], '--rows 100000: the val split holds 1,000 bytes, 62 stream(s)'),
             (['bench.py', '--mode=train', '--plot=p/new.png'], '--mode=train has none; drop --plot'),
             (['bench.py', '--variants=none,none'], 'names none twice')]
    (owned / 'p' / 'prose.txt').write_text('the cat sat on the mat. ' * 833 + 'the end.')  # 20,000 bytes
    assert_refused(run_scripts, owned, cases)


def test_compare_checks_every_variant_before_the_first_run(owned, run_scripts):
    cases = [(COMPARE + ['--variants=none,head=fourier'], "needs tokens that are ordered bins"),
             (COMPARE + ['--variants=none,dataset=nosuch'], 'no dataset at data/nosuch'),
             (COMPARE + ['--variants=soft:none,wide:n_embd=32+init_from=soft'], 'the weights of soft do not fit it'),
             (COMPARE + ['--variants=soft:none,audio:dataset=tones+init_from=soft'], 'other tokens'),
             (COMPARE + ['--variants=none,haar+block_size=50000'], 'block_size=50000')]
    assert_refused(run_scripts, owned, cases)


# ---------------------------------------------------------------- silent wrong behaviour

def test_variant_labels_are_plain_names_and_a_nan_in_a_log_is_damage(owned, run_scripts):
    cases = [(COMPARE + [f'--variants=none,{v}'], words) for v, words in [
        ('..:haar', "'..' cannot name a run's folder"), ('x/y:haar', "'x/y' cannot name a run's folder"),
        ('+', 'empty setting'), ('a:', 'empty setting'), ('haar++ema', 'empty setting'),
        ('x:y:haar', "one ':' at most")]]
    cases.append((['compare.py', '--replot=True', '--results=results/nan'], 'a val_loss that is not a finite number'))
    assert_refused(run_scripts, owned, cases)


def test_a_resumed_run_goes_on_as_it_began_unless_told_otherwise(owned, run_scripts, tmp_path):
    """Resuming with another seed, batch size or learning rate than the checkpoint's: refused with both values before any
    work, unless --resume_with_changes=True; not given, they are the checkpoint's."""
    resume = ['train.py', '--out_dir=out/text', '--init_from=resume'] + TINY + ['--max_iters=2']
    cases = [(resume + ['--seed=7'], 'was trained with seed=1337, but the settings say seed=7'),
             (resume + ['--batch_size=8', '--learning_rate=0.01'], 'batch_size=4, learning_rate=0.001, but the '
                                                                   'settings say batch_size=8, learning_rate=0.01'),
             (resume[:4] + ['--max_iters=2', '--warmup_iters=0'], '--resume_with_changes=True')]
    assert_refused(run_scripts, owned, cases)
    shutil.copytree(owned / 'out' / 'text', tmp_path / 'run')
    (tmp_path / 'data').symlink_to(owned / 'data')
    train_here(tmp_path, TINY + ['--out_dir=run', '--init_from=resume', '--max_iters=2', '--seed=7',
                                 '--resume_with_changes=True'])
    assert torch.load(tmp_path / 'run' / 'ckpt.pt', weights_only=True)['config']['seed'] == 7


def test_input_that_is_not_utf8_or_holds_no_text(owned, run_scripts, run_script, tmp_path):
    m1 = ['--m1', 'out/m1/ckpt.pt', '--out', 'new/ei']
    cases = [(['prepare/bytes.py', '--input', 'p/latin1.txt', '--out', 'new/b'], 'not UTF-8 text (150 byte(s)'),
             (['prepare/spm.py', '--input', 'p/latin1.txt', '--out', 'new/s'], 'not UTF-8 text'),
             (['prepare/equal_info.py', '--input', 'p/latin1.txt'] + m1, 'not UTF-8 text'),
             (['prepare/equal_info.py', '--input', 'p/blank.txt'] + m1, 'holds no text'),
             (['prepare/equal_info.py', '--input', 'p/short.txt'] + m1, 'too short to split')]
    assert_refused(run_scripts, owned, cases)
    # the datasets that normalise text keep going, and say how many bytes they could not read
    r = run_script(['prepare/text8.py', '--input', str(owned / 'p' / 'latin1.txt'), '--out', 'data/t'], tmp_path)
    assert r.returncode == 0 and 'warning: 150 byte(s) of 1 file(s) are not UTF-8' in r.stderr, r.stderr


def test_settings_are_not_dropped(owned, run_scripts, tmp_path):
    cases = [(['train.py', '--out_dir=new/m', '--dataset=music27', '--init_from=out/text/ckpt.pt'] + TINY[1:],
              'trained on other tokens than data/music27 holds (chars tokens against midi_events'),
             (['train.py', '--out_dir=out/text', '--init_from=resume'] + TINY, 'is at iter 1 already, and max_iters=1')]
    assert_refused(run_scripts, owned, cases)
    # fourier_bins=0 with fourier_start: the bins from there to the last of the dataset's
    (tmp_path / 'data').symlink_to(owned / 'data')
    train_here(tmp_path, TINY + ['--out_dir=run', '--dataset=tones', '--head=fourier', '--fourier_freqs=4',
                                 '--fourier_start=10'])
    args = torch.load(tmp_path / 'run' / 'ckpt.pt', weights_only=True)['model_args']
    assert (args['fourier_start'], args['fourier_bins']) == (10, 246)

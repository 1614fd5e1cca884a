"""
Tests of the dataset format and the Dataset object (dataset.py): uint8 / uint16 round trips, batches
drawn by (seed, iteration) and fixed evaluation windows, an atomic rewrite, and a damaged or wrong
dataset as a one-line error that names the fix. (The command-line side of bad datasets, with every
file unchanged, is in test_failures.py.)
"""
import os

import numpy as np
import pytest

from dataset import Dataset, DatasetError, open_split, read_meta, write_dataset


@pytest.mark.parametrize('dtype,vocab', [('uint8', 27), ('uint8', 256), ('uint16', 388), ('uint16', 65_536)])
def test_dataset_round_trip(tmp_path, monkeypatch, dtype, vocab):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, size=5000)
    ids[0] = vocab - 1
    d = str(tmp_path / 'data' / 'x')
    write_dataset(d, {'train': ids[:4000], 'val': ids[4000:]}, dict(vocab_size=vocab, dtype=dtype, tokenizer='bytes'))
    meta = read_meta(d)
    assert meta['dtype'] == dtype and meta['tokens'] == {'train': 4000, 'val': 1000}
    data = open_split(d, meta, 'train')
    assert data.dtype == np.dtype(dtype) and np.array_equal(data, ids[:4000])
    monkeypatch.chdir(tmp_path)
    x, y = Dataset('x').batch('train', np.array([0, 100]), 8)
    assert x.dtype == np.int64 and np.array_equal(x[1], ids[100:108]) and np.array_equal(y[:, :-1], x[:, 1:])


def test_batches_depend_on_seed_and_iteration_only(tmp_path, monkeypatch, text_dataset):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = Dataset('tiny')
    a, b = data.train_offsets(1, 5, 32, 8), data.train_offsets(1, 5, 32, 8)
    assert np.array_equal(a, b) and not np.array_equal(a, data.train_offsets(1, 6, 32, 8))
    assert not np.array_equal(a, data.train_offsets(2, 5, 32, 8))
    assert a.max() < data.size('train') - 32
    windows = data.eval_offsets('val', 32, 10)
    assert windows[0] == 0 and windows[-1] == data.size('val') - 33 and np.all(np.diff(windows) > 0)
    assert data.ordered is None and data.tokenizer.name == 'chars' and data.vocab_size == 27


def test_rewriting_a_dataset_replaces_it_whole(tmp_path):
    d = str(tmp_path / 'data' / 'x')
    write_dataset(d, {'train': np.zeros(100), 'val': np.zeros(10)}, dict(vocab_size=27))
    with pytest.raises(DatasetError):  # a failed rewrite leaves the old dataset untouched
        write_dataset(d, {'train': np.full(50, 99), 'val': np.zeros(5)}, dict(vocab_size=27))
    assert read_meta(d)['tokens'] == {'train': 100, 'val': 10}
    assert sorted(os.listdir(tmp_path / 'data')) == ['x']


@pytest.mark.parametrize('damage,words', [
    ('no_meta', 'meta.json missing'),
    ('truncated', 'truncated'),
    ('odd_size', 'not a multiple'),
    ('big_ids', '>= vocab_size'),
])
def test_a_damaged_dataset_is_a_one_line_error_naming_the_fix(tmp_path, monkeypatch, damage, words, text_dataset):
    d = text_dataset(tmp_path, dtype='uint16', vocab=300)
    train_bin = os.path.join(d, 'train.bin')
    if damage == 'no_meta':
        os.remove(os.path.join(d, 'meta.json'))
    elif damage == 'truncated':
        os.truncate(train_bin, os.path.getsize(train_bin) - 100)
    elif damage == 'odd_size':
        with open(train_bin, 'ab') as f:
            f.write(b'\0')
    elif damage == 'big_ids':
        np.full(10, 299, dtype=np.uint16).tofile(train_bin + '.x')
        data = np.fromfile(train_bin, dtype=np.uint16)
        data[5] = 5000
        data.tofile(train_bin)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError) as e:
        Dataset('tiny')
    assert words in str(e.value) and '\n' not in str(e.value)
    # the fix: the command recorded in meta.json, or a pointer to the prepare scripts
    assert ('python prepare/tiny.py' if damage != 'no_meta' else '--out data/tiny') in str(e.value)




def test_an_unreadable_meta_json_names_a_way_that_works(tmp_path):
    """A red-team pass: the hint said to build the dataset with --out of its folder, which every prepare script
    then refused (a folder it cannot tell is a dataset). The hint now says to move the folder away first."""
    from dataset import rebuild_hint
    folder = tmp_path / 'data' / 'b4'
    folder.mkdir(parents=True)
    (folder / 'meta.json').write_text('{bad')
    assert rebuild_hint(str(folder)).startswith(f"move {folder} away")
    (folder / 'meta.json').unlink()
    assert not rebuild_hint(str(folder)).startswith('move')

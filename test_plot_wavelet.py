"""
Tests of plot_wavelet.py on tiny trained runs: the curves it draws are the model's own (the Haar box
exactly for a haar run, a learnable run's trained kernels, the residual stream before and after the
block's wavelet operation related by the project's causal moving average), and its command line writes
into the run's folder, refuses what it must, and fails in one line.
"""
import os

import numpy as np
import pytest
import torch

from checkpoints import load_checkpoint, load_model_state
from model import GPT, GPTConfig, causal_convolution, causal_moving_average, wavelet_windows
from plot_wavelet import kernel_curves, residual_through_wavelet
from train import train


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A haar run and a learnable run, 8 steps each, on data/tiny: {mode: (folder, model)}."""
    from conftest import _make_text_dataset
    from settings import TRAIN, parse_config
    root = tmp_path_factory.mktemp('wavelet_runs')
    _make_text_dataset(str(root))
    here = os.getcwd()
    os.chdir(root)
    try:
        out = {}
        for mode in ('haar', 'learnable'):
            c, _ = parse_config([], TRAIN)
            c.update(out_dir=f'out_{mode}', dataset='tiny', n_layer=2, n_head=2, n_embd=32, block_size=32,
                     batch_size=8, max_iters=8, eval_interval=8, eval_iters=1, warmup_iters=2, learning_rate=1e-2,
                     device='cpu', threads=1, wavelet=mode)
            train(c)
            ckpt = load_checkpoint(f'out_{mode}/ckpt.pt')
            model = GPT(GPTConfig(**ckpt['model_args']))
            load_model_state(model, ckpt['model'])
            out[mode] = (root / f'out_{mode}', model.eval())
    finally:
        os.chdir(here)
    return out


def test_a_haar_runs_kernels_are_exactly_its_boxes(runs):
    model = runs['haar'][1]
    levels = kernel_curves(model, 1)
    assert [l.k for l in levels] == [2, 4, 8, 16, 32]  # log2(block_size) levels
    windows = wavelet_windows(model.config)
    for level in levels:
        assert windows[level.first:level.last] == [level.k] * (level.last - level.first)
        box = np.where(np.arange(len(level.box)) < level.k, 1.0 / level.k, 0.0).astype(np.float32)
        assert np.array_equal(level.box, box)
        assert np.array_equal(level.kernels, np.repeat(box[:, None], level.last - level.first, 1))
    assert levels[0].first == 0 and levels[-1].last == len(windows) == 16  # half of n_embd


def test_a_learnable_runs_kernels_are_its_trained_ones_beside_the_box(runs):
    model = runs['learnable'][1]
    for layer in (0, 1):
        levels = kernel_curves(model, layer)
        kernel = model.transformer.h[layer].wavelet.kernel().detach()
        moved = 0
        for level in levels:
            box = np.where(np.arange(len(level.box)) < level.k, 1.0 / level.k, 0.0).astype(np.float32)
            assert np.array_equal(level.box, box)  # what it started from
            assert np.array_equal(level.kernels, kernel[:, level.first:level.last].numpy())
            moved += not np.allclose(level.kernels, box[:, None], atol=1e-4)
        assert moved == len(levels)  # 8 steps at lr 1e-2 moved every level away from its box


def test_before_and_after_are_the_wavelets_input_and_its_moving_average(runs):
    ids = torch.arange(20)[None] % 27
    model = runs['haar'][1]
    n_mod = len(wavelet_windows(model.config))
    window = torch.tensor(wavelet_windows(model.config), dtype=torch.float32)
    for layer in (0, 1):
        before, after = residual_through_wavelet(model, layer, ids)
        assert before.shape == after.shape == (20, 32)
        expect = causal_moving_average(torch.from_numpy(before[None, :, :n_mod]), window, valid=False)[0]
        np.testing.assert_allclose(after[:, :n_mod], expect.numpy(), rtol=0, atol=1e-6)
        assert np.array_equal(after[:, n_mod:], before[:, n_mod:])  # the other half is left alone
    # before is block 1's own output: block 0's wavelet output, through block 1's attention and MLP
    out0 = torch.from_numpy(residual_through_wavelet(model, 0, ids)[1])[None]
    block = model.transformer.h[1]
    with torch.no_grad():
        x = out0 + block.attn(block.ln_1(out0))
        x = x + block.mlp(block.ln_2(x))
    np.testing.assert_allclose(residual_through_wavelet(model, 1, ids)[0], x[0].numpy(), atol=1e-5)
    # a learnable run: the kernel applied, by the project's plain convolution
    model = runs['learnable'][1]
    before, after = residual_through_wavelet(model, 0, ids)
    kernel = model.transformer.h[0].wavelet.kernel().detach()
    expect = causal_convolution(torch.from_numpy(before[None, :, :n_mod]), kernel)[0]
    np.testing.assert_allclose(after[:, :n_mod], expect.numpy(), atol=1e-5)


def test_the_command_writes_into_the_run_and_refuses_what_it_must(runs, run_scripts, tmp_path):
    pytest.importorskip('matplotlib')
    haar, learnable = runs['haar'][0], runs['learnable'][0]
    root = haar.parent
    (root / 'mine.png').write_bytes(b'not ours')
    none = root / 'out_none'
    if not none.exists():
        ckpt = torch.load(haar / 'ckpt.pt', weights_only=True)
        ckpt['model_args']['wavelet'] = 'none'
        none.mkdir()
        torch.save(ckpt, none / 'ckpt.pt')
    results = run_scripts([
        ['plot_wavelet.py', '--out_dir=out_haar'],
        ['plot_wavelet.py', '--out_dir=out_learnable', '--start=the cat sat on the mat', '--layer=-1'],
        ['plot_wavelet.py', '--out_dir=out_haar'],                                   # exists now
        ['plot_wavelet.py', '--out_dir=out_haar', '--overwrite=True', '--layer=1'],  # ... and may be replaced
        ['plot_wavelet.py', '--out_dir=out_haar', '--output=mine.png'],
        ['plot_wavelet.py', '--out_dir=out_haar', '--output=out_haar/ckpt.pt', '--overwrite=True'],
        ['plot_wavelet.py', '--out_dir=out_haar', '--output=data/tiny/w.png'],
        ['plot_wavelet.py', '--out_dir=out_haar', '--layer=2', '--output=l.png'],
        ['plot_wavelet.py', '--out_dir=out_haar', '--start=' + 'the cat ' * 5, '--output=l.png'],
        ['plot_wavelet.py', '--out_dir=out_none', '--output=n.png'],
        ['plot_wavelet.py', '--out_dir=nowhere', '--output=x.png'],
    ], root)
    (c0, out0, err0), (c1, out1, err1) = results[:2]
    assert c0 == 0 and c1 == 0, err0 + err1
    assert out0.strip() == f"wrote {os.path.join('out_haar', 'wavelet.png')}"
    assert (haar / 'wavelet.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (learnable / 'wavelet.png').stat().st_size > 10_000
    assert not (root / 'wavelet.png').exists()  # never where the command ran
    errors = [(code, err.strip()) for code, _, err in results[2:]]
    assert errors[1][0] == 0, errors[1]
    expect = [(2, 'exists; replace it with --overwrite=True'), (4, 'exists; replace it with --overwrite=True'),
              (5, 'name it x.png'), (6, "in a dataset's folder"), (7, 'the model has 2 blocks; give 0 .. 1'),
              (8, 'longer than the model\'s block_size=32; shorten it'), (9, "wavelet='none'"), (10, 'no checkpoint at')]
    for i, words in expect:
        code, err = results[i][0], results[i][2].strip()
        assert code == 1 and err.startswith('error: ') and words in err and '\n' not in err, (i, err)
    assert (root / 'mine.png').read_bytes() == b'not ours' and not (root / 'l.png').exists()
    assert not [p for p in root.rglob('*.tmp-*')]


def test_without_matplotlib_it_says_what_to_install(runs, run_scripts):
    root = runs['haar'][0].parent
    blocker = root / 'no_matplotlib'
    blocker.mkdir(exist_ok=True)
    (blocker / 'matplotlib.py').write_text("raise ImportError('blocked for a test')\n")
    [(code, out, err)] = run_scripts([['plot_wavelet.py', '--out_dir=out_haar', '--output=m.png']], root,
                                     env={'PYTHONPATH': os.pathsep.join([str(blocker), os.path.dirname(__file__)])})
    assert code == 1 and err.strip().endswith('pip install matplotlib') and '\n' not in err.strip(), err
    assert not (root / 'm.png').exists()

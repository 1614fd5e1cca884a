"""
Tests of SUPRA's linear attention (linear_attention.py, model.LinearAttention) and rotary positions:
the parallel, chunked and recurrent forms agree with each other and with two independent
references; the decays follow the formula for any number of heads; a model with it is causal,
runs past block_size, and decodes one token at a time exactly like a full forward far past block_size;
a softmax checkpoint converts into it bit for bit. Causality and cached generation of rotary softmax
models are in test_model.py and test_generate.py.
"""

import pytest
import torch

from linear_attention import decay_rates, decayed_attention, recurrent_step
from model import GPT, GPTConfig

BLOCK = 16


def qkv(B=2, H=3, T=50, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, D, generator=g) for _ in range(3)]


def recurrence_float64(q, k, v, gamma):
    """S_i = gamma S_{i-1} + k_i^T v_i, o_i = q_i S_i, one position at a time, in float64."""
    B, H, T, D = q.shape
    S, out = torch.zeros(B, H, D, D, dtype=torch.float64), []
    for t in range(T):
        S = gamma.double()[None, :, None, None] * S + k[:, :, t, :, None].double() * v[:, :, t, None, :].double()
        out.append((q[:, :, t, None, :].double() @ S)[:, :, 0])
    return torch.stack(out, 2), S


def decay_mask_reference(q, k, v, gamma):
    """The parallel form as lightning-attention's reference writes it: the mask exp(-s (i - j)), s = -log gamma,
    on Q K^T, in float32."""
    T = q.size(2)
    s = -gamma.log()
    i = torch.arange(T)
    lag = (i[:, None] - i[None, :]).float()
    mask = torch.exp(-s[:, None, None] * lag) * (lag >= 0)
    return (q @ k.transpose(-1, -2) * mask) @ v


@pytest.mark.parametrize('H', [1, 3, 8, 32])
def test_decays_follow_the_formula(H):
    """gamma_h = exp(-2^(-8 (h+1) / H)), worked by hand: with 8 heads the exponents are 2^-(h+1), so the decays are
    exp(-1/2), exp(-1/4), ..., exp(-1/256); with 32 heads every fourth is one of those; with 3 heads 2^(-8/3) = 0.15749
    and 2^(-16/3) = 0.024803."""
    eight = [0.6065306597, 0.7788007831, 0.8824969026, 0.9394130628, 0.9692332345, 0.9844964370, 0.9922179383,
             0.9961013695]
    g = decay_rates(H).tolist()
    assert len(g) == H and all(a < b for a, b in zip(g, g[1:]))
    want = {1: {0: 0.9961013695}, 3: {0: 0.8542852443, 1: 0.9755019290, 2: 0.9961013695},
            8: dict(enumerate(eight)), 32: {4 * h + 3: x for h, x in enumerate(eight)} | {0: 0.4313237049}}[H]
    for h, x in want.items():
        assert g[h] == pytest.approx(x, rel=1e-6), (h, g[h], x)


def test_three_forms_agree_with_each_other_and_with_the_references():
    q, k, v = qkv(T=3 * BLOCK + 5)
    gamma = decay_rates(3)
    want, state = recurrence_float64(q, k, v, gamma)
    assert torch.allclose(decay_mask_reference(q, k, v, gamma).double(), want, atol=1e-4)
    for chunk in (None, BLOCK, 7, 1):  # parallel, chunked (several block sizes), recurrent
        o, s = decayed_attention(q, k, v, gamma, chunk=chunk, keep_state=True)
        assert torch.allclose(o.double(), want, atol=1e-4), chunk
        assert torch.allclose(s.double(), state, atol=1e-4), chunk
    # a state carried between calls: the sequence in two pieces, the second one token at a time
    o, s = decayed_attention(q[:, :, :20], k[:, :, :20], v[:, :, :20], gamma, keep_state=True)
    out = [o]
    for t in range(20, q.size(2)):
        o, s = recurrent_step(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], gamma, s)
        out.append(o)
    assert torch.allclose(torch.cat(out, 2).double(), want, atol=1e-4)
    assert torch.allclose(s.double(), state, atol=1e-4)


def linear_model(**kw):
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=BLOCK, vocab_size=27, n_layer=2, n_head=2, n_embd=32, attention='linear',
                          position='rope', **kw)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize('kw', [dict(), dict(wavelet='haar'), dict(wavelet='learnable', qk_norm=True)],
                         ids=['plain', 'haar', 'learnable-qk_norm'])
def test_decoding_equals_a_full_forward_far_past_block_size(kw):
    """A forward of 4 x block_size (chunked) and decoding one token at a time (recurrent, with the
    wavelet's ring buffer) give the same logits at every position: no context limit, no re-encoding."""
    model = linear_model(**kw)
    assert model.context_limit is None
    x = torch.randint(0, 27, (2, 4 * BLOCK), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = model(x, x)
        cache = model.new_cache()
        first, _ = model(x[:, :5], cache=cache)
        steps = [model.decode(x[:, t:t + 1], cache)[:, 0] for t in range(5, x.size(1))]
    assert torch.allclose(first[:, -1], full[:, 4], atol=1e-4)
    assert torch.allclose(torch.stack(steps, 1), full[:, 5:], atol=1e-4)
    assert cache.layers[0].attn.state.shape == (2, 2, 16, 16) and cache.layers[0].attn.state.dtype == torch.float32


def test_state_stays_float32_under_autocast():
    model = linear_model(wavelet='haar')
    x = torch.randint(0, 27, (1, 40))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        cache = model.new_cache()
        model(x[:, :10], cache=cache)
        logits = model.decode(x[:, 10:11], cache)
    assert cache.layers[0].attn.state.dtype == torch.float32 and torch.isfinite(logits).all()


def test_learned_positions_keep_the_block_size_limit():
    model = GPT(GPTConfig(block_size=BLOCK, vocab_size=27, n_layer=1, n_head=2, n_embd=32, attention='linear'))
    assert model.context_limit == BLOCK
    with pytest.raises(AssertionError, match='block_size'):
        model(torch.zeros(1, BLOCK + 1, dtype=torch.long))


def test_conversion_loads_every_softmax_tensor_bit_for_bit(tmp_path, monkeypatch, text_dataset, train_config):
    from train import train
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    train(train_config(out_dir='soft', position='rope', max_iters=4, eval_interval=4))
    soft = torch.load('soft/ckpt.pt', weights_only=True)['model']
    records = train(train_config(out_dir='lin', init_from='soft/ckpt.pt', max_iters=2, eval_interval=2,
                                 learning_rate=0.0, min_lr=0.0, warmup_iters=0, attention='linear'),
                    given={'attention'})
    ckpt = torch.load('lin/ckpt.pt', weights_only=True)
    lin = ckpt['model']
    assert ckpt['model_args']['attention'] == 'linear' and ckpt['model_args']['position'] == 'rope'
    new = set(lin) - set(soft)
    assert new == {f'transformer.h.{i}.attn.phi.{p}' for i in range(2) for p in ('weight', 'bias')}
    assert all(torch.equal(soft[k], lin[k]) for k in soft)  # lr 0: every pretrained tensor, unchanged
    assert torch.equal(lin['transformer.h.0.attn.phi.weight'], torch.eye(32))
    assert ckpt['source']['path'] == 'soft/ckpt.pt' and sorted(ckpt['source']['new_tensors']) == sorted(new)
    assert records[0]['val_loss'] > 0
    # a source the model cannot take whole (learned positions: the table would be dropped)
    train(train_config(out_dir='learned', max_iters=2, eval_interval=2))
    from errors import ConfigError
    with pytest.raises(ConfigError, match=r"the settings say position='rope' \(the source has 'learned'\)"):
        train(train_config(out_dir='lin2', init_from='learned/ckpt.pt', attention='linear', position='rope'),
              given={'attention', 'position'})
    # the source's sizes need no restating: a conversion that names only what changes
    train(train_config(out_dir='lin3', init_from='soft/ckpt.pt', attention='linear', n_layer=7, n_embd=64, max_iters=2,
                       eval_interval=2), given={'attention'})
    assert torch.load('lin3/ckpt.pt', weights_only=True)['model_args']['n_layer'] == 2

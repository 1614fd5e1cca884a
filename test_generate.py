"""
Tests of generation: incremental decoding (the cache) gives the logits of a full forward over the
same context at every step, across the block_size boundary too; cached and recomputed greedy
generation agree token for token; each row of a batch gets what it would get alone. The decoding
step has static shapes: it compiles once for every position, and on CUDA its graph replays give the
same tokens as the eager step.
Run: python -m pytest -q test_generate.py   (CPU, well under a minute)
"""
import os

import pytest
import torch

import generate as generate_module
import model as model_module
from generate import generate, sample_next
from model import GPT, GPTConfig
from train import train

BLOCK = 32
VARIANTS = [dict(wavelet='none'), dict(wavelet='haar'), dict(wavelet='haar', wavelet_pad='valid'),
            dict(wavelet='haar', wavelet_window=8), dict(wavelet='learnable'),
            dict(wavelet='learnable', wavelet_max_kernel=4, wavelet_pad='valid'),
            dict(wavelet='ema'), dict(wavelet='ema', wavelet_pad='valid', wavelet_last=False),
            dict(wavelet='haar', head='fourier', fourier_freqs=8), dict(position='rope'),
            dict(position='rope', wavelet='haar'), dict(attention='linear', wavelet='haar')]
ids = lambda v: '-'.join(map(str, v.values()))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and do not stall when other jobs share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def trained_looking(**kw):
    """A small model whose weights are not the init: kernels that are no longer boxes, and weights
    large enough that the logits differ clearly between tokens."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=BLOCK, vocab_size=27, n_layer=2, n_head=2, n_embd=32, **kw)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def contexts(n_prompt, n_new, slide=BLOCK // 2):
    """The rule generate() documents, written out: (start, end) of the context for each new token."""
    start = 0
    for n in range(n_prompt, n_prompt + n_new):
        if n - start > BLOCK:  # one token too many: drop the oldest `slide` of the BLOCK + 1
            start = n - (BLOCK + 1 - slide)
        yield start, n


def generate_recording(model, idx, n_new, monkeypatch, replay=None, **kw):
    """generate(), and the logits each new token was sampled from. With replay (B, n_new), the tokens
    are taken from it instead of sampled."""
    seen = []
    sample = generate_module.sample_next

    def recording(logits, *args):
        seen.append(logits.clone())
        return sample(logits, *args) if replay is None else replay[:, len(seen) - 1:len(seen)]

    with monkeypatch.context() as m:
        m.setattr(generate_module, 'sample_next', recording)
        out = generate(model, idx, n_new, **kw)
    return out, torch.stack(seen, 1)


def contexts_fed(n_prompt, n_new, use_cache=False, **kw):
    """generate()'s own contexts: the length of every sequence it runs the model's forward on, each checked to be
    the last tokens of its output so far."""
    model = trained_looking()
    fed = []
    model.register_forward_pre_hook(lambda m, args: fed.append(args[0].clone()))
    idx = torch.randint(0, 27, (1, n_prompt), generator=torch.Generator().manual_seed(0))
    out = generate(model, idx, n_new, generator=torch.Generator().manual_seed(1), use_cache=use_cache, **kw)
    ends = range(n_prompt, n_prompt + n_new) if not use_cache else [None] * len(fed)
    for x, end in zip(fed, ends):
        if end is not None:
            assert torch.equal(x, out[:, end - x.size(1):end])
    return [x.size(1) for x in fed]


def test_context_rule():
    """Hand-worked for block_size 32: the context grows to 32; the next token would make 33, so the oldest 16
    (slide, block_size // 2) go and 17 remain; it regrows to 32 and drops 16 again."""
    grows = list(range(5, 33))                    # a 5-token prompt: 5, 6, ..., 32 (28 tokens)
    cycles = list(range(17, 33)) * 3 + list(range(17, 21))  # then 17..32 three times, and 17..20: 80 in all
    assert contexts_fed(5, 80) == grows + cycles == [n - s for s, n in contexts(5, 80)]
    assert contexts_fed(5, 80, use_cache=True) == [5, 17, 17, 17, 17]  # forwards: the prompt, then each re-encoding
    assert contexts_fed(40, 1) == [17]  # a long prompt is cut the same way
    assert contexts_fed(40, 3, slide=1) == [32] * 3  # nanoGPT: the last block_size


@pytest.mark.parametrize('variant', VARIANTS, ids=ids)
def test_cached_logits_equal_full_forward(variant, monkeypatch):
    model = trained_looking(**variant)
    idx = torch.randint(0, 27, (2, 5), generator=torch.Generator().manual_seed(1))
    n_new = 2 * BLOCK + 10  # crosses the block_size boundary three times
    g = torch.Generator().manual_seed(2)
    out, logits = generate_recording(model, idx, n_new, monkeypatch, generator=g)  # sampled: varied tokens
    assert out.shape == (2, 5 + n_new) and torch.equal(out[:, :5], idx)
    with torch.no_grad():
        for step, (start, end) in enumerate(contexts(5, n_new)):
            full, _ = model(out[:, start:end])
            assert torch.allclose(logits[:, step], full[:, -1], atol=1e-4), f"step {step}, context {start}:{end}"


@pytest.mark.parametrize('rows', [1, 3])
@pytest.mark.parametrize('variant', [dict(wavelet='haar', wavelet_pad='valid'), dict(wavelet='learnable')], ids=ids)
def test_the_gpu_decoding_step_equals_a_full_forward(variant, rows, monkeypatch):
    """The step a GPU runs, forced on the CPU (every kernel turned by one gather a step; for one stream the
    matmul written straight into the stream, for more a copy): every token's logits those of a full forward."""
    monkeypatch.setattr(model_module, 'FORMS_OF', 'cuda')
    model = trained_looking(**variant)
    idx = torch.randint(0, 27, (rows, 5), generator=torch.Generator().manual_seed(1))
    n_new = BLOCK + 10  # past block_size: the ring wraps, and the context is encoded again
    out, logits = generate_recording(model, idx, n_new, monkeypatch, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for step, (start, end) in enumerate(contexts(5, n_new)):
            full, _ = model(out[:, start:end])
            assert torch.allclose(logits[:, step], full[:, -1], atol=1e-4), f"step {step}, context {start}:{end}"


@pytest.mark.parametrize('variant', VARIANTS, ids=ids)
def test_greedy_cached_equals_recompute(variant):
    model = trained_looking(**variant)
    idx = torch.randint(0, 27, (3, 7), generator=torch.Generator().manual_seed(1))
    for prompt, slide in ((idx, 0), (idx, 5), (torch.cat([idx] * 6, 1), 0)):  # the last one is > block_size
        cached = generate(model, prompt, 2 * BLOCK + 10, temperature=0, slide=slide)
        recomputed = generate(model, prompt, 2 * BLOCK + 10, temperature=0, slide=slide, use_cache=False)
        assert torch.equal(cached, recomputed)
        assert len(set(cached[:, prompt.size(1):].flatten().tolist())) > 3  # not one token repeated


def test_slide_one_is_nanogpt():
    model = trained_looking(wavelet='haar')
    idx = torch.randint(0, 27, (2, 40), generator=torch.Generator().manual_seed(1))
    out = idx
    with torch.no_grad():
        for _ in range(10):  # nanoGPT's loop: always the last block_size tokens
            logits, _ = model(out[:, -BLOCK:])
            out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(generate(model, idx, 10, temperature=0, slide=1, use_cache=False), out)
    assert torch.equal(generate(model, idx, 10, temperature=0, slide=1), out)


@pytest.mark.parametrize('variant', [dict(wavelet='haar'), dict(wavelet='learnable')], ids=ids)
def test_batch_rows_equal_single_runs(variant, monkeypatch):
    model = trained_looking(**variant)
    idx = torch.randint(0, 27, (4, 6), generator=torch.Generator().manual_seed(1))
    n_new = BLOCK + 20
    g = torch.Generator().manual_seed(3)
    out, logits = generate_recording(model, idx, n_new, monkeypatch, temperature=1.0, top_k=10, generator=g)
    for b in range(4):  # alone, with the tokens this row sampled in the batch
        alone, alone_logits = generate_recording(model, idx[b:b + 1], n_new, monkeypatch, replay=out[b:b + 1, 6:])
        assert torch.equal(alone, out[b:b + 1])
        assert torch.allclose(alone_logits[0], logits[b], atol=1e-4)
    greedy = generate(model, idx, n_new, temperature=0)
    assert all(torch.equal(greedy[b:b + 1], generate(model, idx[b:b + 1], n_new, temperature=0)) for b in range(4))


def test_sample_writes_audio_with_and_without_cache(tmp_path, run_script):
    """sample.py on an audio checkpoint: a .wav of the asked length, the same greedy samples both ways."""
    config = dict(block_size=BLOCK, vocab_size=256, n_layer=2, n_head=2, n_embd=32, wavelet='learnable')
    torch.manual_seed(0)
    model = GPT(GPTConfig(**config))
    meta = dict(tokenizer='mulaw', modality='audio', vocab_size=256, sample_rate=16000)
    os.makedirs(tmp_path / 'out')
    torch.save(dict(model_args=config, model=model.state_dict(), meta=meta), tmp_path / 'out' / 'ckpt.pt')
    wavs = []
    for cache in (True, False):
        wav = tmp_path / f'cache_{cache}.wav'
        r = run_script(['sample.py', '--out_dir=out', '--seconds=0.01', '--temperature=0',
                        f'--cache={cache}', f'--output={wav}', '--device=cpu'], tmp_path)
        assert r.returncode == 0, r.stderr
        wavs.append(wav.read_bytes())
    assert wavs[0] == wavs[1]
    assert len(wavs[0]) == 44 + 2 * (1 + 160)  # header, then the 1-token prompt and 0.01 s at 16 kHz
    r = run_script(['sample.py', '--out_dir=out', '--seconds=0.01', '--temperature=0', '--with_prompt=False',
                    f'--output={tmp_path / "new.wav"}', '--device=cpu'], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'new.wav').read_bytes()[44:] == wavs[0][44 + 2:]  # the same new samples, without the prompt


@pytest.mark.parametrize('variant', [dict(wavelet='haar', wavelet_pad='valid'),
                                     dict(attention='linear', position='rope', wavelet='learnable'),
                                     dict(wavelet='ema', head='fourier', fourier_freqs=4)], ids=ids)
def test_decoding_step_compiles_once_for_every_position(variant):
    """What a CUDA graph needs: one graph for the whole step (fullgraph: no break), the same for 1,000
    positions (no recompilation), and the logits of the eager step."""
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=1024, vocab_size=27, n_layer=1, n_head=2, n_embd=16, **variant)).eval()
    step = torch.compile(model.decode, backend=counting_backend, fullgraph=True, dynamic=False)
    tokens = torch.randint(0, 27, (2, 1001), generator=torch.Generator().manual_seed(1))
    compiled_cache, eager_cache = model.new_cache(), model.new_cache()
    with torch.inference_mode():
        model(tokens[:, :1], cache=compiled_cache)
        model(tokens[:, :1], cache=eager_cache)
        for t in range(1, 1001):
            compiled = step(tokens[:, t:t + 1], compiled_cache)
            if t % 100 == 0 or t < 5:
                assert torch.allclose(compiled, model.decode(tokens[:, t:t + 1], eager_cache), atol=1e-5)
            else:
                model.decode(tokens[:, t:t + 1], eager_cache)
    assert len(graphs) == 1 and compiled_cache.pos.tolist() == [1001, 1001]


@pytest.mark.parametrize('variant', [dict(wavelet='learnable', wavelet_pad='valid'),
                                     dict(attention='linear', wavelet='haar'), dict(position='rope')], ids=ids)
def test_the_cache_is_written_in_place(variant):
    """What a captured graph relies on: decoding steps and the re-encodings when the context slides write
    into the same tensors, never new ones (a graph would go on reading the old)."""
    model = trained_looking(**variant)
    idx = torch.randint(0, 27, (2, 5), generator=torch.Generator().manual_seed(1))
    cache = model.new_cache()
    with torch.inference_mode():
        model(idx, cache=cache)
        where = [t.data_ptr() for t in cache.tensors()]
        token = idx[:, -1:]
        for step in range(2 * BLOCK):
            if cache.pos[0].item() == BLOCK:  # the context is full: encode half of it again, as generate() does
                model(torch.randint(0, 27, (2, BLOCK // 2)), cache=cache)
            token = model.decode(token, cache).argmax(-1)
            assert [t.data_ptr() for t in cache.tensors()] == where


@pytest.mark.parametrize('variant', [dict(wavelet='haar', wavelet_pad='valid'), dict(attention='linear', position='rope',
                                     wavelet='learnable'), dict(position='rope')], ids=ids)
def test_rows_at_their_own_positions(variant):
    """Streams that each go their own way (Equal-Info's coder): after cache.restart(rows), those rows start
    again at position 0 while the others go on, and every row's logits are those of a full forward of
    its own tokens since its start."""
    model = trained_looking(**variant)
    seq = torch.randint(0, 27, (3, 30), generator=torch.Generator().manual_seed(1))
    starts = [0, 0, 0]
    cache = model.new_cache()
    with torch.inference_mode():
        model(seq[:, :1], cache=cache)
        for t in range(1, 30):
            if t in (7, 19):  # row 1 starts again at t = 7, rows 0 and 2 at t = 19
                rows = torch.tensor([1]) if t == 7 else torch.tensor([0, 2])
                cache.restart(rows)
                for r in rows.tolist():
                    starts[r] = t
            logits = model.decode(seq[:, t:t + 1], cache)
            for r in range(3):
                full, _ = model(seq[r:r + 1, starts[r]:t + 1])
                assert torch.allclose(logits[r], full[0, -1:], atol=1e-4), (t, r)
    assert cache.pos.tolist() == [30 - 19, 30 - 7, 30 - 19]


def test_compiled_decoding_gives_the_same_tokens():
    """generate(compile=True): the step through inductor (real code generation, on the CPU here)."""
    torch._dynamo.reset()
    model = trained_looking(wavelet='haar')
    idx = torch.randint(0, 27, (2, 5), generator=torch.Generator().manual_seed(1))
    assert torch.equal(generate(model, idx, BLOCK + 10, temperature=0, compile=True),
                       generate(model, idx, BLOCK + 10, temperature=0))


def test_top_k_sampling_keeps_the_k_largest():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]])
    draws = torch.cat([sample_next(logits, 1.0, 2, torch.Generator().manual_seed(s)) for s in range(200)])
    assert set(draws.flatten().tolist()) == {1, 3}


@pytest.mark.parametrize('variant', [dict(wavelet='learnable'), dict(attention='linear', position='rope'),
                                     dict(head='fourier', fourier_freqs=16)], ids=ids)
def test_weights_cast_once_give_the_numbers_of_autocast(variant):
    """What a CUDA graph's step decodes with (cast_once: the autocast matmuls' weights in bf16 already), under
    bf16 autocast, in inference mode as generate() runs it: the same logits as the model, bit for bit, and the
    model itself untouched (its embedding still tied and float32; phi and the Fourier head stay float32)."""
    model = trained_looking(**variant)
    idx = torch.randint(0, 27, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, cache_enabled=False):
        twin = generate_module.cast_once(model, torch.bfloat16)
        caches = [model.new_cache(), model.new_cache()]
        for m, cache in zip((model, twin), caches):
            m(idx[:, :-1], cache=cache)
        logits = [m.decode(idx[:, -1:], cache) for m, cache in zip((model, twin), caches)]
    assert torch.equal(*logits)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert variant.get('head') == 'fourier' or model.lm_head.weight is model.transformer.wte.weight
    assert twin.transformer.h[0].mlp.c_fc.weight.dtype == torch.bfloat16 and twin.transformer.wte.weight.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('variant', [dict(wavelet='haar'), dict(wavelet='learnable', wavelet_pad='valid'),
                                     dict(attention='linear', position='rope', wavelet='haar')], ids=ids)
def test_cuda_graph_replays_give_the_tokens_of_the_eager_step(variant):
    model = trained_looking(**variant).cuda()
    idx = torch.randint(0, 27, (3, 5), device='cuda', generator=torch.Generator('cuda').manual_seed(1))
    sampled = [generate(model, idx, 3 * BLOCK, generator=torch.Generator('cuda').manual_seed(2), graph=graph)
               for graph in (True, False)]
    assert torch.equal(*sampled)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        greedy = [generate(model, idx, 3 * BLOCK, temperature=0, graph=graph) for graph in (True, False)]
    assert torch.equal(*greedy)


def test_sample_prints_text(tmp_path, monkeypatch, text_dataset, train_config, run_script):
    text_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    train(train_config(max_iters=4, eval_interval=4))
    r = run_script(['sample.py', f'--out_dir={tmp_path / "out"}', '--start=the cat',
                    '--max_new_tokens=20', '--num_samples=2', '--device=cpu'], tmp_path)
    assert r.returncode == 0, r.stderr
    samples = [s.strip('\n') for s in r.stdout.split('-' * 40) if s.strip()]
    assert len(samples) == 2 and all(s.startswith('the cat') and len(s) == 27 for s in samples)

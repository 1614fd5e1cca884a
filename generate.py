"""
Sampling from a GPT: the generation loop, the rule for a context that outgrows block_size, and
drawing one token. The model's side of incremental decoding (what each layer keeps) is in
model.py (Cache); this file only decides what to feed it.

    out = generate(model, idx, max_new_tokens=100, temperature=0.8, top_k=50)
"""
from contextlib import contextmanager

import torch
from torch.nn import functional as F


def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None, use_cache=True, slide=0,
             on_token=None):
    """
    Sample max_new_tokens after idx (B, T): B sequences side by side, one prompt length.

    use_cache=True: the context goes through the model once, then each new token is one more
    position, reusing every layer's attention keys and values and the wavelet's last inputs
    (model.Cache). use_cache=False: the whole context is run again for every token; slow, and
    the same logits.

    The context: learned positions end at block_size (and so does a KV cache), so a context cannot
    slide by one token and keep its cache. When a new token would make it longer than block_size,
    the oldest `slide` tokens of that block_size+1 are dropped (default block_size // 2) and the rest
    is encoded again from position 0; a prompt longer than block_size is cut the same way. Both
    paths follow this rule, so they agree token for token. slide=1 is nanoGPT's rule (always the
    last block_size tokens): with the cache, that means encoding the whole context again for every
    token. A model with no context limit (linear attention with rotary positions) never slides:
    its state has a fixed size, and every token costs the same however long the sequence.
    on_token(n), if given, is called after each new token with the number of tokens so far (progress).
    """
    block_size = model.context_limit or float('inf')
    slide = slide or model.config.block_size // 2
    assert 1 <= slide <= model.config.block_size, f"slide={slide} should be in 1..block_size"
    B, T = idx.size()
    out = idx.new_empty(B, T + max_new_tokens)  # allocated once: no copy of the sequence per token
    out[:, :T] = idx
    cache = model.new_cache() if use_cache else None
    start = 0
    with decoding(idx.device):
        for end in range(T, T + max_new_tokens):  # the context is out[:, start:end]
            if end - start > block_size:
                start = end - (block_size + 1 - slide)
            if cache is not None and 0 < cache.pos == end - start - 1:  # one token more than the cache holds
                logits, _ = model(out[:, end - 1:end], cache=cache)
            else:  # the whole context (again, from position 0, when it has moved)
                if cache is not None:
                    cache.pos = 0
                logits, _ = model(out[:, start:end], cache=cache)
            out[:, end:end + 1] = sample_next(logits[:, -1], temperature, top_k, generator)
            if on_token is not None:
                on_token(end + 1)
    return out  # allocated outside inference mode: an ordinary tensor


@contextmanager
def decoding(device):
    """What generate() runs under. No autograd bookkeeping at all (about 6% faster per token than
    no_grad), and on a CPU in float32 no oneDNN: its per-call setup costs more than one token's GELU
    and small matmuls (about 10% of a step)."""
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = mkldnn and (device.type != 'cpu' or torch.is_autocast_enabled('cpu'))
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.backends.mkldnn.enabled = mkldnn


def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    """One token per row from logits (B, V); temperature 0 means greedy."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits[logits < v[:, [-1]]] = -float('inf')
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)

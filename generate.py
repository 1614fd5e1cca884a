"""
Sampling from a GPT: the generation loop, the rule for a context that outgrows block_size, and
drawing one token. The model's side of incremental decoding (what each layer keeps) is in
model.py (Cache, GPT.decode); this file only decides what to feed it, and on a GPU replays the
decoding step as a CUDA graph.

    out = generate(model, idx, max_new_tokens=100, temperature=0.8, top_k=50)
"""
import copy
import math
from contextlib import contextmanager

import torch
from torch.nn import functional as F


def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None, use_cache=True, slide=0,
             on_token=None, graph=None, compile=False):
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

    The loop never waits for the device: tokens stay on it until the end. graph (default: on CUDA)
    captures the decoding step once as a CUDA graph and replays it for every token; compile=True
    compiles that step with torch.compile first (fewer, fused kernels). Both give the same tokens.
    """
    block_size = model.context_limit or float('inf')
    slide = slide or model.config.block_size // 2
    assert 1 <= slide <= model.config.block_size, f"slide={slide} should be in 1..block_size"
    B, T = idx.size()
    out = idx.new_empty(B, T + max_new_tokens)  # allocated once: no copy of the sequence per token
    out[:, :T] = idx
    cache = model.new_cache() if use_cache else None
    graph = idx.device.type == 'cuda' if graph is None else graph
    start, cached, step = 0, 0, None  # cached: how many tokens of the context the cache holds
    with decoding(idx.device):
        for end in range(T, T + max_new_tokens):  # the context is out[:, start:end]
            if end - start > block_size:
                start = end - (block_size + 1 - slide)
            if cache is not None and 0 < cached == end - start - 1:  # one token more than the cache holds
                step = step or decoding_step(model, cache, out[:, end - 1:end], graph, compile,
                                             temperature, top_k, generator)
                out[:, end:end + 1] = step(out[:, end - 1:end])
            else:  # the whole context (again, from position 0, when it has moved)
                logits, _ = model(out[:, start:end], cache=cache)
                out[:, end:end + 1] = sample_next(logits[:, -1], temperature, top_k, generator)
            cached = end - start
            if on_token is not None:
                on_token(end + 1)
    return out  # allocated outside inference mode: an ordinary tensor


def decoding_step(model, cache, token, graph=False, compile=False, temperature=1.0, top_k=None, generator=None):
    """step(token) -> the next token (B, 1): model.decode with this cache, then sample_next, compiled and
    captured as asked. A captured step casts the weights once (cast_once) and samples inside the graph."""
    if not graph:
        return sampling_step(model, cache, compile, temperature, top_k, generator)
    if torch.is_autocast_enabled('cuda'):
        model = cast_once(model, torch.get_autocast_dtype('cuda'))
    return CUDAGraphStep(sampling_step(model, cache, compile, temperature, top_k, generator), cache, token, generator)


def sampling_step(model, cache, compile=False, temperature=1.0, top_k=None, generator=None):
    """step(token) -> the next token: one model.decode and sample_next (what a CUDA graph captures)."""
    decode = torch.compile(model.decode, fullgraph=True, dynamic=False) if compile else model.decode

    def step(token):
        return sample_next(decode(token, cache)[:, -1], temperature, top_k, generator)
    return step


def cast_once(model, dtype):
    """A copy of model whose autocast matmuls (GPT.autocast_linears) hold their weights in dtype already:
    autocast casts a weight at every call otherwise, and in a CUDA graph its cache is off, so a replay
    would cast every weight again (a third of a small model's kernels). Casting an already cast weight is
    free, so the copy computes the same numbers, bit for bit. Its lm_head is untied from wte: the embedding
    stays float32."""
    with torch.inference_mode(False), torch.no_grad():
        twin = copy.deepcopy(model)
        for linear in twin.autocast_linears():
            linear.weight = torch.nn.Parameter(linear.weight.to(dtype), requires_grad=False)
            if linear.bias is not None:
                linear.bias = torch.nn.Parameter(linear.bias.to(dtype), requires_grad=False)
    return twin


class CUDAGraphStep:
    """
    A decoding step, sampling included, captured once as a CUDA graph and replayed per token: the few
    hundred kernel launches of a step become one, which is what a small model's token costs on a GPU. A
    thin layer over step(token) -> token, whose shapes never change and which writes its cache in place:
    the token goes into a fixed input tensor, the next one comes out of a fixed output tensor. Its random
    numbers come from `generator` (or the default one), whose state the graph advances at each replay.
    """

    def __init__(self, step, cache, token, generator=None):
        self.token = torch.empty(token.shape, dtype=token.dtype, device=token.device)  # contiguous, whatever token is
        self.token.copy_(token)
        self.cache, self.together = cache, cache.together
        # CUDA's lazy set-up (cuBLAS, kernel choice, compilation) must happen before the capture: a few
        # trial steps on a side stream, each from the cache as it was (the position stays in range)
        saved = [t.clone() for t in cache.tensors()]
        autocast = dict(device_type='cuda', dtype=torch.get_autocast_dtype('cuda'),
                        enabled=torch.is_autocast_enabled('cuda'), cache_enabled=False)  # no cached casts: they
        side = torch.cuda.Stream()                                                 # would be freed after capture
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.autocast(**autocast):
            for _ in range(3):
                step(self.token)
                for t, s in zip(cache.tensors(), saved):
                    t.copy_(s)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        if generator is not None:  # the default generator is registered with every capture
            self.graph.register_generator_state(generator)
        with torch.cuda.graph(self.graph), torch.autocast(**autocast):
            self.next = step(self.token)

    def __call__(self, token):
        if self.cache.together != self.together:
            raise RuntimeError("the cache's rows were restarted after this step was captured; capture it again")
        self.token.copy_(token)
        self.graph.replay()
        return self.next


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
    logits = logits.float() / temperature if temperature != 1.0 else logits
    if top_k is not None:  # masked_fill, not logits[mask] = ...: a boolean index waits for the device
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = logits.masked_fill(logits < v[:, -1:], -math.inf)
    # torch.multinomial's own way for one sample, argmax(p / q) with q ~ Exp(1) (the same tokens from the
    # same generator), without its checks of p: on a GPU they are a dozen more kernels a token
    probs = F.softmax(logits, dim=-1, dtype=torch.float32)
    q = torch.empty_like(probs).exponential_(generator=generator)
    return torch.div(probs, q, out=q).argmax(-1, keepdim=True)

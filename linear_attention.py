"""
The arithmetic of SUPRA's linear attention (Mercat et al., "Linearizing Large Language Models",
arXiv 2405.06640): per head, with a fixed decay gamma,

    o_i = sum_{j <= i} gamma^(i-j) (q_i . k_j) v_j

with no softmax and no denominator. It is one computation in three forms that agree:
- parallel: (Q K^T * M) V with the decay mask M_ij = gamma^(i-j) for j <= i, else 0 (training);
- chunked: the parallel form within chunks, plus a state carried from chunk to chunk (long sequences);
- recurrent: S_i = gamma S_{i-1} + k_i^T v_i, o_i = q_i S_i, a (head_dim x head_dim) state per head
  (generation, at a cost per token that does not grow): recurrent_step().
decayed_attention() is the first two (the chunk size picks the form; chunks of one token are the
recurrent form too). The module that uses them (feature map, rotary positions, GroupNorm) is
model.LinearAttention.
"""
import math

import torch


def decay_rates(n_head):
    """gamma_h = exp(-2^(-8 (h+1) / H)) for h = 0..H-1: ALiBi's slopes as decays, defined for any H.
    With 8 heads: 0.607, 0.779, 0.882, 0.939, 0.969, 0.984, 0.992, 0.996."""
    return torch.tensor([math.exp(-2 ** (-8 * (h + 1) / n_head)) for h in range(n_head)], dtype=torch.float32)


def decayed_attention(q, k, v, gamma, state=None, chunk=None, keep_state=False):
    """
    q, k, v: (B, H, T, D) float32 at positions after those the state holds; gamma: (H,).
    state: (B, H, D, D), sum_j gamma^(t-j) k_j^T v_j over the positions j <= t before these, or None.
    chunk: positions per chunk (default: all of T at once, the parallel form; 1: the recurrent form).
    Returns o (B, H, T, D) and, with keep_state, the state after the last position (else None or stale).
    """
    T = q.size(2)
    chunk = chunk or T
    log_gamma = gamma.log()[:, None, None]  # (H, 1, 1)
    out = []
    for start in range(0, T, chunk):
        qc, kc, vc = q[:, :, start:start + chunk], k[:, :, start:start + chunk], v[:, :, start:start + chunk]
        r = torch.arange(qc.size(2), device=q.device)
        lag = r[:, None] - r[None, :]
        mask = torch.where(lag >= 0, torch.exp(log_gamma * lag.clamp(min=0)), 0.0)  # (H, n, n)
        o = ((qc @ kc.transpose(-1, -2)) * mask) @ vc
        if state is not None:  # the positions before this chunk, seen through the state
            o = o + torch.exp(log_gamma * (r[:, None] + 1)) * (qc @ state)
        n = qc.size(2)
        if keep_state or start + n < T:  # the next chunk, or the caller, needs it
            new = (kc * torch.exp(log_gamma * (n - 1 - r[:, None]))).transpose(-1, -2) @ vc
            state = new if state is None else torch.exp(log_gamma * n) * state + new
        out.append(o)
    return torch.cat(out, 2), state


def recurrent_step(q, k, v, gamma, state):
    """One new position: q, k, v (B, H, 1, D) float32, state (B, H, D, D) as decayed_attention returns
    it. S = gamma S + k^T v, o = q S: returns o (B, H, 1, D) and the new state."""
    state = gamma[:, None, None] * state + k.transpose(-1, -2) @ v
    return q @ state, state

"""
What an evaluation reports beyond the loss: bits per byte (any tokenizer, on datasets that store
byte counts) and the Fourier head paper's smoothness of predicted distributions over ordered bins.
"""
import math

import numpy as np


def bits_per_byte(mean_loss, n_tokens, n_bytes):
    """A mean loss in nats per token over n_tokens tokens, as bits per byte of the n_bytes they stand for."""
    return mean_loss * n_tokens / math.log(2) / n_bytes


def pmf_smoothness(pmfs):
    """The Fourier head paper's smoothness of PMFs (rows of an (n, m) array), averaged over rows:
    sum over sigma = 1..100 of 6 / (pi^2 sigma^2) * ||q - G_sigma q||_2, with G_sigma a Gaussian filter
    that wraps around (scipy's). Lower is smoother; None without scipy."""
    try:
        from scipy.ndimage import gaussian_filter1d
    except ImportError:
        return None
    q = np.asarray(pmfs, dtype=np.float64)
    total = np.zeros(q.shape[:-1])
    for sigma in range(1, 101):
        smoothed = gaussian_filter1d(q, sigma, axis=-1, mode='wrap', radius=q.shape[-1] - 1)
        total += 6 / (np.pi ** 2 * sigma ** 2) * np.linalg.norm(q - smoothed, axis=-1)
    return float(total.mean())

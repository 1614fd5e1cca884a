"""
The arithmetic of an Equal-Info window, exact in 64-bit integers: first for one window in plain Python
(the reference), then for many windows side by side in numpy (what the coder runs; the tests check the
two agree).

A window starts from the interval [0, 1), held as integers [low, low + width) in units of 2^-SCALE.
Each byte x narrows it by the integer frequencies of M1's table for its position, cum[x] .. cum[x+1]
out of 2^PRECISION, to
    [low + floor(width * cum[x] / 2^14), low + floor(width * cum[x+1] / 2^14)),
so the bytes' intervals tile the old one exactly. A window of b bits holds the bytes while the shortest
dyadic interval [k / 2^m, (k+1) / 2^m) inside theirs has m <= b; its value is that k padded with zeros
to b bits (k * 2^(b - m)): the b bits the window emits. A byte that still fits keeps a width of at
least 2^(SCALE - b) units, so the flooring changes its share by less than 2^-(SCALE - b - 14).

Delay rule (the paper's unambiguous variant): a window keeps only the fewest of its bytes whose value
is the window's value, so a decoder that reads bytes at the point value / 2^b and stops at the first
prefix whose value is the window's stops exactly where the encoder did. (The greedy rule, every byte
that fits, is ambiguous: bytes decoded from the zero padding can give the same value.)
"""
from math import log2

import numpy as np

PRECISION = 14   # frequencies out of 2^14: every byte at least 1, so one byte always fits 16 bits
SCALE = 62       # interval ends in units of 2^-62: low + width <= 2^62 < 2^63
LOW31 = (1 << 31) - 1


# ---------------------------------------------------------------- one window, plain Python (the reference)

def narrow(low, width, start, end):
    """The interval after one more byte whose cumulative frequencies are start .. end (out of 2^PRECISION)."""
    a, b = (width * start) >> PRECISION, (width * end) >> PRECISION
    return low + a, b - a


def shortest_code(low, width, bits):
    """The shortest dyadic interval inside [low, low + width) / 2^SCALE, as its k padded to `bits` bits;
    None when it needs more than `bits` bits."""
    # a dyadic interval of 2^-m needs 2^-m <= width / 2^SCALE; one of 2^-m <= width / 2 always fits
    for m in range(max(1, SCALE - width.bit_length()), bits + 1):
        k = -((-low) >> (SCALE - m))                 # ceil(low / 2^(SCALE - m))
        if (k + 1) << (SCALE - m) <= low + width:    # [k, k+1) / 2^m ends inside
            return k << (bits - m)
    return None


def encode_window(symbols, bits):
    """
    symbols: (start, end) cumulative frequencies of the window's candidate bytes in order (the bytes that
    follow, at most the cap). Returns (value, n, information): the window's b-bit value, how many bytes it
    holds (Delay rule), and those bytes' information in bits (-log2 of their interval's width).
    """
    low, width = 0, 1 << SCALE
    values = []
    for start, end in symbols:
        nlow, nwidth = narrow(low, width, start, end)
        value = shortest_code(nlow, nwidth, bits)
        if value is None:
            break
        low, width = nlow, nwidth
        values.append((value, width))
    assert values, "one byte always fits a fresh window (freq >= 1 of 2^PRECISION, bits > PRECISION)"
    n = next(i for i, v in enumerate(values) if v[0] == values[-1][0]) + 1
    return values[-1][0], n, SCALE - log2(values[n - 1][1])


class WindowDecoder:
    """Reads one window's bytes back from its value, one byte per table: next_byte(cum) returns the
    byte, then done says whether the window ends there (its first prefix with the window's value)."""

    def __init__(self, value, bits):
        self.value, self.bits = value, bits
        self.low, self.width = 0, 1 << SCALE
        self.bytes = []
        self.done = self.invalid = False

    def next_byte(self, cum):
        """cum: the 257 cumulative frequencies M1 gives the next byte after self.bytes."""
        # the byte whose interval holds the point value / 2^bits
        offset = (self.value << (SCALE - self.bits)) - self.low
        x = max(i for i in range(256) if (self.width * cum[i]) >> PRECISION <= offset)
        self.low, self.width = narrow(self.low, self.width, cum[x], cum[x + 1])
        self.bytes.append(x)
        code = shortest_code(self.low, self.width, self.bits)
        self.done = code == self.value
        self.invalid = code is None  # narrower than b bits already: no text gives this value
        return x


# ---------------------------------------------------------------- many windows side by side, numpy int64

def scaled(width, c):
    """floor(width * c / 2^PRECISION) for width < 2^62 and 0 <= c <= 2^PRECISION, exact in int64 (the
    product needs 76 bits: width is split at bit 31)."""
    return (((width >> 31) * c) << (31 - PRECISION)) + (((width & LOW31) * c) >> PRECISION)


def narrow_rows(low, width, start, end):
    """narrow() for arrays: each row's interval after its byte."""
    a = scaled(width, start)
    return low + a, scaled(width, end) - a


def settled(low, width, bits):
    """Rows whose interval holds exactly one b-bit block [k, k+1) / 2^b: every longer prefix that still fits
    holds that block and no shorter dyadic interval (this one would hold it too), so its value is the
    window's already. The encoder can stop such a window without M1's table for the next byte."""
    shift = SCALE - bits
    k = -((-low) >> shift)  # the first block that starts inside
    return (((k + 1) << shift) <= low + width) & (((k + 2) << shift) > low + width)


def shortest_codes(low, width, bits):
    """shortest_code() for arrays: each row's value, or -1 where none fits in `bits` bits."""
    # the shortest block 2^-m inside has m = SCALE - L + 1 or SCALE - L + 2 for width's bit length L (a block of
    # half the width always fits); frexp's exponent is L, or L + 1 where the float rounds up to a power of two
    first = np.maximum(SCALE + 1 - np.frexp(width.astype(np.float64))[1], 1)
    out = np.full(len(low), -1, dtype=np.int64)
    high = low + width
    for m in (first, first + 1, first + 2):
        fits, m = m <= bits, np.minimum(m, bits)  # (a longer m fits nothing)
        shift = SCALE - m
        k = -((-low) >> shift)
        found = (out < 0) & fits & (((k + 1) << shift) <= high)
        out[found] = (k << (bits - m))[found]
    return out

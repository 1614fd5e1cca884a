"""
The arithmetic of one Equal-Info window, exact: plain Python integers, no floats, no renormalisation.

A window starts from the interval [0, 1). Each byte x narrows it by the integer frequencies of M1's
table for that position (cum[x] .. cum[x+1] out of 2^PRECISION), so after n bytes the interval is
[low, low + width) / 2^scale with scale = PRECISION * n, exactly. A window of b bits can hold the
bytes while the shortest dyadic interval [k / 2^m, (k+1) / 2^m) inside theirs has m <= b. Its
value is that k padded with zeros to b bits (k * 2^(b - m)): the b bits the window emits.

Delay rule (the paper's unambiguous variant): a window keeps only the fewest of its bytes whose
value is the window's value, so a decoder that reads bytes at the point value / 2^b and stops at
the first prefix whose value is the window's stops exactly where the encoder did. The greedy rule
(keep every byte that fits) is ambiguous: bytes decoded from the zero padding can give the same
value.
"""
from bisect import bisect_right
from math import log2 as float_log2

PRECISION = 14   # frequencies out of 2^14: every byte at least 1, so one byte always fits 16 bits


def narrow(low, width, scale, start, freq):
    """The interval after one more byte whose frequencies are start .. start + freq (out of 2^PRECISION)."""
    return (low << PRECISION) + width * start, width * freq, scale + PRECISION


def shortest_code(low, width, scale, bits):
    """The shortest dyadic interval inside [low, low + width) / 2^scale, as its k padded to `bits` bits;
    None when it needs more than `bits` bits."""
    high = low + width
    # a dyadic interval of 2^-m needs 2^-m <= width / 2^scale, so m >= scale - log2(width); it is found
    # at most two steps later (2^-m <= width / 2 always fits one)
    for m in range(max(0, scale - width.bit_length()), bits + 1):
        k = -((-low << m) >> scale)              # ceil(low * 2^m / 2^scale)
        if (k + 1) << scale <= high << m:        # [k, k+1) / 2^m ends inside
            return k << (bits - m)
    return None


def encode_window(symbols, bits):
    """
    symbols: (start, freq) of the window's candidate bytes in order (the bytes that follow, at most
    the cap). Returns (value, n, information): the window's b-bit value, how many bytes it holds
    (Delay rule), and those bytes' information under M1's tables in bits (-log2 of their interval).
    """
    low, width, scale = 0, 1, 0
    values = []
    for start, freq in symbols:
        nlow, nwidth, nscale = narrow(low, width, scale, start, freq)
        value = shortest_code(nlow, nwidth, nscale, bits)
        if value is None:
            break
        low, width, scale = nlow, nwidth, nscale
        values.append((value, width, scale))
    assert values, "one byte always fits a fresh window (freq >= 1 of 2^PRECISION, bits > PRECISION)"
    value = values[-1][0]
    n = next(i for i, v in enumerate(values) if v[0] == value) + 1
    width, scale = values[n - 1][1:]
    return value, n, scale - log2(width)


def log2(n):
    """log2 of a positive integer of any size."""
    shift = max(0, n.bit_length() - 60)
    return float_log2(n >> shift) + shift


class WindowDecoder:
    """Reads one window's bytes back from its value, one byte per table: next_byte(cum) returns the
    byte, then done says whether the window ends there (its first prefix with the window's value)."""

    def __init__(self, value, bits):
        self.value, self.bits = value, bits
        self.low, self.width, self.scale = 0, 1, 0
        self.bytes = []
        self.done = self.invalid = False

    def next_byte(self, cum):
        """cum: the 257 cumulative frequencies M1 gives the next byte after self.bytes."""
        # the byte whose interval holds the point value / 2^bits:
        # (low * 2^P + width * cum[x]) / 2^(scale + P) <= value / 2^bits, in integers
        target = ((self.value << (self.scale + PRECISION)) - (self.low << (PRECISION + self.bits))) // (self.width << self.bits)
        x = bisect_right(cum, target) - 1
        self.low, self.width, self.scale = narrow(self.low, self.width, self.scale, cum[x], cum[x + 1] - cum[x])
        self.bytes.append(x)
        code = shortest_code(self.low, self.width, self.scale, self.bits)
        self.done = code == self.value
        self.invalid = code is None  # narrower than b bits already: no text gives this value
        return x

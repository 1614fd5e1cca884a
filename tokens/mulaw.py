"""Raw audio as 16 kHz, 8-bit mu-law samples: 256 ordered levels (the paper's audio tokens).

A WAV file (any sample rate; mono or stereo; 8/16/24/32-bit integer or float) is averaged to
mono, resampled to 16 kHz with scipy's polyphase anti-aliasing filter, and mu-law encoded
(mu = 255, the formula of torchaudio's mu_law_encoding) without any gain change. scipy is
needed to read and resample (pip install scipy); writing needs only the standard library."""
import math
import os
import warnings
import wave

import numpy as np

from errors import UserError
from outputs import write_atomically
from tokens.base import Tokenizer

SAMPLE_RATE = 16000
MU = 255


def mulaw_encode(x):
    """Samples in [-1, 1] -> uint8 ids 0..255 (mu-law, mu = 255; silence is 128)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.rint((y + 1) / 2 * MU).astype(np.uint8)


def mulaw_decode(ids):
    """uint8 ids -> float32 samples in [-1, 1]: the inverse of mulaw_encode, up to rounding."""
    y = np.asarray(ids, dtype=np.float64) / MU * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def read_wav(path):
    """A WAV file -> (mono float64 samples in [-1, 1], sample rate). Raises on unreadable files, on files
    shorter than their header says (truncated), and on float samples that are NaN or infinite."""
    try:
        from scipy.io import wavfile
    except ImportError:
        raise UserError("reading WAV files needs scipy: pip install scipy")
    if os.path.getsize(path) == 0:
        raise ValueError("empty file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # scipy also warns about harmless extra chunks (LIST, cue): those pass
        rate, data = wavfile.read(path)
    truncated = [str(w.message) for w in caught if "EOF" in str(w.message)]  # "Reached EOF prematurely; ..."
    if truncated:
        raise ValueError(f"truncated: {truncated[0]}")
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned
        x = (data - 128.0) / 128.0
    elif data.dtype.kind == "i":  # 16/32-bit, and 24-bit, which scipy left-aligns into int32
        x = data / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        x = data.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"{np.count_nonzero(~np.isfinite(x))} samples are NaN or infinite")
    return (x.mean(axis=1) if x.ndim == 2 else x), int(rate)


def resample_to_16k(x, rate):
    """Polyphase resampling with scipy's anti-aliasing FIR filter; length ceil(len * 16000 / rate)."""
    if rate == SAMPLE_RATE:
        return x
    try:
        from scipy.signal import resample_poly
    except ImportError:
        raise UserError("resampling audio needs scipy: pip install scipy")
    g = math.gcd(rate, SAMPLE_RATE)
    return resample_poly(x, SAMPLE_RATE // g, rate // g)


def encode_file(path):
    """A WAV file -> uint8 mu-law ids at 16 kHz mono."""
    return mulaw_encode(resample_to_16k(*read_wav(path)))


def write_wav(ids, path, rate=SAMPLE_RATE):
    """uint8 mu-law ids -> a mono 16-bit PCM WAV, written atomically."""
    pcm = np.clip(np.rint(mulaw_decode(ids) * 32767), -32768, 32767).astype("<i2")

    def write(tmp):
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
    return write_atomically(path, write)


class MuLaw(Tokenizer):
    name = "mulaw"
    suffix = ".wav"
    suffixes = (".wav",)
    text = False
    ordered = range(256)  # all 256 levels, in order of the sample value

    @classmethod
    def facts(cls):
        return {"vocab_size": 256, "dtype": "uint8", "modality": "audio", "tokenizer": cls.name,
                "sample_rate": SAMPLE_RATE, "mu": MU}

    def read(self, path):
        try:
            return encode_file(path)
        except UserError:
            raise
        except Exception as e:  # scipy raises several types for a file that is not WAV
            raise UserError(f"{path} is not a readable WAV file ({type(e).__name__}: {e}); give a .wav prompt")

    def write(self, ids, path):
        return write_wav(np.asarray(ids, dtype=np.uint8), path, int(self.meta.get("sample_rate", SAMPLE_RATE)))

    def start(self):
        return mulaw_encode(np.zeros(1)).tolist()  # silence

"""
tones: SYNTHETIC piano, offline: 16 kHz, 8-bit mu-law audio (256 ordered levels) that a fresh clone
can build without any download, for the Fourier head and other audio runs on a laptop.

    python prepare/tones.py                        # -> data/tones (train.py also builds it on first use)
    python prepare/tones.py --minutes 1 --out data/tones_1min --seed 7

This is not recorded music and says nothing about real piano audio (prepare/youtubemix.py is that).
Each piece is computed here, the same for the same --seed: a key and a tempo, a chord per bar
(I-V-vi-IV and the like), a left hand (block chords, or an arpeggio) and a right-hand melody that
walks the scale, its strong beats on chord tones. Each note is additive synthesis of a piano-like
string: up to 24 partials below 7.5 kHz, stretched by a string's inharmonicity (f_k = k f0
sqrt(1 + B k^2)), amplitudes falling with k (brighter when louder), each decaying exponentially
(higher partials and higher notes faster), a 2 ms attack, a short hammer noise, and damping when
the key is released. A piece is mixed, given a recording level (peak 0.35 - 0.8) and a little white
noise (about -60 dB), then mu-law encoded without gain change (tokens/mulaw.py), as prepare/youtubemix.py
encodes recordings. Splits by piece: the first 90% train, then 5% val, 5% test (at least one each).
"""
import argparse
import math
import os
import sys

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np

from errors import main_guard
from dataset import DatasetError, write_dataset
from prepare.common import parse_args, prepare_command
from tokens.mulaw import SAMPLE_RATE, MuLaw, mulaw_encode

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 0, 4))  # scale degrees of chord roots
RHYTHMS = ((1, 1, 1, 1), (2, 1, 1), (1, 1, 2), (0.5, 0.5, 1, 2), (1.5, 0.5, 1, 1), (0.5, 0.5, 0.5, 0.5, 1, 1), (4,))
PIECE_SECONDS = 16.0  # about; a piece ends with the bar that reaches it


def note(midi, velocity, seconds, rng):
    """One piano-like note: samples from the key's strike until it has rung out after release."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    inharmonicity = 1e-4 * 2 ** ((midi - 60) / 24)  # thinner, stiffer strings up the keyboard
    k = np.arange(1, 25)
    freqs = k * f0 * np.sqrt(1 + inharmonicity * k ** 2)
    k, freqs = k[freqs < 7500], freqs[freqs < 7500]
    amps = velocity * k ** -(2.0 - velocity) * rng.uniform(0.7, 1.3, len(k))  # louder: brighter
    tau = 2.5 * (261.6 / f0) ** 0.6 / (1 + 0.4 * (k - 1))                   # seconds to fall by 1/e
    release = 0.12
    n = int((seconds + 5 * release) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    phases = rng.uniform(0, 2 * np.pi, len(k))
    x = (amps[:, None] * np.exp(-t[None] / tau[:, None]) * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)
    x *= np.minimum(1.0, t / 0.002)                                          # attack
    x *= np.where(t < seconds, 1.0, np.exp(-(t - seconds) / release))        # damper on release
    hammer = int(0.01 * SAMPLE_RATE)
    x[:hammer] += 0.03 * velocity * rng.standard_normal(hammer) * np.exp(-np.arange(hammer) / (0.002 * SAMPLE_RATE))
    return x


def score(rng, seconds):
    """A piece as notes [(start s, midi, velocity, held s)]: a chord progression, a left hand, a melody."""
    root, scale = int(rng.integers(48, 60)), SCALES[rng.choice(list(SCALES))]
    beat = 60.0 / rng.uniform(72, 144)
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    arpeggio = rng.random() < 0.5

    def pitch(degree, octave):  # a scale degree (any integer), octaves above (or below) the key's root
        return root + 12 * (octave + degree // 7) + scale[degree % 7]

    notes, degree, bar = [], int(rng.integers(0, 7)), 0
    while bar * 4 * beat < seconds:
        t0, chord = bar * 4 * beat, progression[bar % len(progression)]
        tones = [chord, chord + 2, chord + 4]  # the triad, as scale degrees
        if arpeggio:
            for i, d in enumerate([tones[0], tones[2], tones[1], tones[2]] * 2):
                notes.append((t0 + i * beat / 2, pitch(d, -1), rng.uniform(0.25, 0.4), beat))
        else:
            for b in (0, 2):
                for d in tones:
                    notes.append((t0 + b * beat, pitch(d, -1), rng.uniform(0.25, 0.4), 1.8 * beat))
        t = t0
        for j, length in enumerate(RHYTHMS[rng.integers(len(RHYTHMS))]):
            degree += int(rng.choice((-2, -1, -1, 0, 1, 1, 2)))
            degree = min(max(degree, 0), 11)  # the melody keeps within an octave and a half
            if j == 0:  # a strong beat: the nearest chord tone
                degree = min((d + 7 * o for d in tones for o in (0, 1) if 0 <= d + 7 * o <= 11), key=lambda d: abs(d - degree))
            notes.append((t, pitch(degree, 1), rng.uniform(0.55, 0.9), length * beat * 0.95))
            t += length * beat
        bar += 1
    return notes


def piece(seed, index, seconds=PIECE_SECONDS):
    """Piece `index` of `seed` as float samples in [-1, 1]: the same whatever else is built."""
    rng = np.random.default_rng([seed, index])
    notes = score(rng, seconds)
    parts = [(int(start * SAMPLE_RATE), note(midi, velocity, held, rng)) for start, midi, velocity, held in notes]
    x = np.zeros(max(s + len(p) for s, p in parts))
    for s, p in parts:
        x[s:s + len(p)] += p
    x *= rng.uniform(0.35, 0.8) / np.abs(x).max()  # the recording level
    x += 10 ** (-60 / 20) * rng.standard_normal(len(x))  # the room and the microphone
    return np.clip(x, -1.0, 1.0)


def split_pieces(n):
    """Piece indices per split: the first 90% train, then 5% val, 5% test, at least one each."""
    n_val = n_test = max(1, round(0.05 * n))
    n_train = n - n_val - n_test
    return {"train": range(n_train), "val": range(n_train, n_train + n_val), "test": range(n_train + n_val, n)}


def build(out_dir="data/tones", minutes=6.0, seed=0, command="python prepare/tones.py"):
    n = math.ceil(minutes * 60 / PIECE_SECONDS)
    if n < 3:
        raise DatasetError(f"--minutes {minutes} gives {n} piece(s); give at least {3 * PIECE_SECONDS / 60:.1f} minutes "
                           f"(one piece each for train, val and test)")
    pieces = split_pieces(n)
    splits = {s: np.concatenate([mulaw_encode(piece(seed, i)) for i in idx]) for s, idx in pieces.items()}
    meta = dict(MuLaw.facts(), source=f"synthetic piano: prepare/tones.py, seed {seed} (not recorded music)",
                pieces={s: len(idx) for s, idx in pieces.items()}, split_rule="by piece: 90% / 5% / 5%", prepare=command)
    return write_dataset(out_dir, splits, meta)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/tones", help="output folder")
    p.add_argument("--minutes", type=float, default=6.0, help="about this much audio in all, in pieces of about 16 s")
    p.add_argument("--seed", type=int, default=0, help="which pieces: the same seed gives the same audio")
    args = parse_args(p)
    if not (math.isfinite(args.minutes) and 0 < args.minutes <= 1e4) or args.seed < 0:
        raise DatasetError(f"--minutes {args.minutes} --seed {args.seed}: give minutes above 0, up to 10,000, and a seed "
                           f"from 0 up")
    meta = build(args.out, args.minutes, args.seed, prepare_command("tones", p, args))
    print(f"{args.out}: " + ", ".join(f"{s} {n:,} samples ({n / SAMPLE_RATE:,.1f} s, {meta['pieces'][s]} pieces)"
                                      for s, n in meta["tokens"].items()) + "; synthetic piano")


if __name__ == "__main__":
    main_guard(main)

"""
YouTubeMix: solo piano audio as 16 kHz, 8-bit mu-law samples (256 symbols). The paper's audio dataset.

    python prepare/youtubemix.py                      # download from Hugging Face, build data/youtubemix
    python prepare/youtubemix.py --input clips/       # offline: a folder (or one file) of WAV files
    python prepare/youtubemix.py --input rec.wav --out data/myaudio

The download: YouTubeMix (241 one-minute clips, about 4 h) is the gated Hugging Face dataset
krandiash/youtubemix. Once: accept its terms on https://huggingface.co/datasets/krandiash/youtubemix,
`pip install huggingface_hub`, then `huggingface-cli login` (or set HF_TOKEN to your access token).

Every WAV (any sample rate; mono or stereo; 8/16/24/32-bit integer or float) is averaged to mono,
resampled to 16 kHz with scipy's polyphase anti-aliasing filter, and mu-law encoded (mu = 255,
the formula of torchaudio's mu_law_encoding) without any gain change. Files that are not a
readable WAV (other formats, empty or corrupt files) are skipped with a warning.

Split by file, so no recording is in two splits: names in natural order ("out2" before "out10"),
the first 88% train, the next 6% val, the rest test (at least one file each). For YouTubeMix's
241 clips that is the standard 212 / 14 / 15 (clips 0-211 / 212-225 / 226-240).
The one exception: with fewer than 3 files there is no file split, so each file is cut in time:
its first 90% is train, the next 5% val, the last 5% test.
"""
import argparse
import math
import os
import re
import sys
import warnings
import wave
import zipfile

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make `prepare` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prepare.common import DatasetError, main_guard, prepare_command, warn_skipped, write_dataset

HF_REPO = "krandiash/youtubemix"
HF_URL = f"https://huggingface.co/datasets/{HF_REPO}"
SAMPLE_RATE = 16000
MU = 255
WAV_EXTENSIONS = (".wav", ".wave")
OTHER_AUDIO = (".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")
FRACTIONS = (0.88, 0.06)  # train, val; test gets the rest


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
    """A WAV file -> (mono float64 samples in [-1, 1], sample rate). Raises on unreadable files."""
    try:
        from scipy.io import wavfile
    except ImportError:
        raise DatasetError("reading WAV files needs scipy: pip install scipy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about harmless extra chunks (LIST, cue)
        rate, data = wavfile.read(path)
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned
        x = (data - 128.0) / 128.0
    elif data.dtype.kind == "i":  # 16/32-bit, and 24-bit, which scipy left-aligns into int32
        x = data / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        x = data.astype(np.float64)
    return (x.mean(axis=1) if x.ndim == 2 else x), int(rate)


def resample_to_16k(x, rate):
    """Polyphase resampling with scipy's anti-aliasing FIR filter; length ceil(len * 16000 / rate)."""
    if rate == SAMPLE_RATE:
        return x
    try:
        from scipy.signal import resample_poly
    except ImportError:
        raise DatasetError("resampling audio needs scipy: pip install scipy")
    g = math.gcd(rate, SAMPLE_RATE)
    return resample_poly(x, SAMPLE_RATE // g, rate // g)


def encode_file(path):
    """A WAV file -> uint8 mu-law ids at 16 kHz mono (also how sample.py turns a .wav into a prompt)."""
    return mulaw_encode(resample_to_16k(*read_wav(path)))


def write_wav(ids, path, meta=None):
    """uint8 mu-law ids -> a mono 16-bit PCM WAV at meta's sample rate, written atomically."""
    rate = int((meta or {}).get("sample_rate", SAMPLE_RATE))
    pcm = np.clip(np.rint(mulaw_decode(ids) * 32767), -32768, 32767).astype("<i2")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def natural_key(name):
    """Sort key putting "out2" before "out10"."""
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def split_files(names):
    """Names in order -> {split: names}: 88% / 6% / rest, at least one file per split (needs 3)."""
    n = len(names)
    end_train, end_val = int(n * FRACTIONS[0]), int(n * sum(FRACTIONS))
    n_val, n_test = max(1, end_val - end_train), max(1, n - end_val)
    n_train = n - n_val - n_test
    return {"train": names[:n_train], "val": names[n_train:n_train + n_val], "test": names[n_train + n_val:]}


def split_clips(clips):
    """{name: ids} in natural order -> ({split: ids}, {split: names}, rule). See module docstring."""
    names = list(clips)
    if len(names) >= 3:
        files = split_files(names)
        splits = {s: np.concatenate([clips[n] for n in files[s]]) for s in files}
        return splits, files, "by file: natural name order, 88% / 6% / 6% (212 / 14 / 15 for 241 clips)"
    parts = {"train": [], "val": [], "test": []}
    for ids in clips.values():
        cuts = [0, int(len(ids) * 0.90), int(len(ids) * 0.95), len(ids)]
        for split, a, b in zip(parts, cuts, cuts[1:]):
            parts[split].append(ids[a:b])
    splits = {s: np.concatenate(p) for s, p in parts.items()}
    return splits, {s: names for s in parts}, "fewer than 3 files: each file cut in time, 90% / 5% / 5%"


def download_youtubemix(cache):
    """The Hugging Face dataset into cache/youtubemix (zip archives in it unpacked); returns the folder."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DatasetError("downloading YouTubeMix needs huggingface_hub: pip install huggingface_hub "
                           "(or pass --input a folder of WAV files)")
    dest = os.path.join(cache, "youtubemix")
    try:
        snapshot_download(repo_id=HF_REPO, repo_type="dataset", local_dir=dest)
    except Exception as e:  # gated repo, no token, no network: all end here
        reason = (str(e).strip().splitlines() or [""])[0]
        raise DatasetError(f"could not download {HF_REPO} ({type(e).__name__}: {reason}); accept its terms "
                           f"on {HF_URL}, log in (huggingface-cli login, or set HF_TOKEN), or without network "
                           f"pass --input a folder of WAV files")
    for root, _, names in os.walk(dest):
        for name in names:
            unpacked = os.path.join(root, name[:-4])
            if name.lower().endswith(".zip") and not os.path.isdir(unpacked):
                try:
                    with zipfile.ZipFile(os.path.join(root, name)) as z:
                        z.extractall(unpacked + ".tmp")
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise DatasetError(f"{name} from {HF_REPO} is corrupt ({e}); delete {dest} and run again")
                os.rename(unpacked + ".tmp", unpacked)
    return dest


def find_files(path):
    """(folder, relative names in natural order) of every non-hidden file under path, or of one file."""
    if os.path.isfile(path):
        return os.path.dirname(os.path.abspath(path)), [os.path.basename(path)]
    if not os.path.isdir(path):
        raise DatasetError(f"--input {path} does not exist")
    names = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        names += [os.path.relpath(os.path.join(root, f), path) for f in files if not f.startswith(".")]
    return path, sorted(names, key=natural_key)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="a folder of WAV files, or one WAV file (skips the download)")
    p.add_argument("--out", default="data/youtubemix", help="output folder")
    p.add_argument("--cache", default="data/downloads", help="where the download is kept")
    args = p.parse_args()
    root, names = find_files(args.input or download_youtubemix(args.cache))
    wavs = [n for n in names if n.lower().endswith(WAV_EXTENSIONS)]
    not_wav = [f"{n} (not WAV: convert it, e.g. ffmpeg -i in.mp3 out.wav)" for n in names
               if n.lower().endswith(OTHER_AUDIO)]
    ignored = len(names) - len(wavs) - len(not_wav)
    if not wavs:
        raise DatasetError(f"no .wav files in {root}" + (f" ({len(not_wav)} other audio files: convert them "
                           "to WAV, e.g. with ffmpeg)" if not_wav else "") + "; pass a folder of WAV files")
    clips, skipped = {}, []
    for name in tqdm(wavs, desc="mu-law encoding", unit="file"):
        try:
            ids = encode_file(os.path.join(root, name))
        except DatasetError:
            raise
        except Exception as e:  # corrupt or not really WAV: skip it, say so below
            skipped.append(f"{name} ({type(e).__name__}: {e}".rstrip(": ") + ")")
            continue
        if len(ids) == 0:
            skipped.append(f"{name} (no samples)")
            continue
        clips[name] = ids
    skipped += not_wav
    warn_skipped(skipped, "unreadable audio files")
    if not clips:
        raise DatasetError(f"none of the {len(wavs)} .wav files in {root} is readable audio "
                           f"(first: {skipped[0]}); pass a folder of WAV files")
    splits, files, rule = split_clips(clips)
    cmd = prepare_command("youtubemix", p, args)
    meta = {"vocab_size": 256, "dtype": "uint8", "modality": "audio", "tokenizer": "mulaw",
            "sample_rate": SAMPLE_RATE, "mu": MU, "files": files, "split_rule": rule,
            "source": args.input or HF_URL, "prepare": cmd}
    meta = write_dataset(args.out, splits, meta)
    print(f"{args.out}: " + ", ".join(f"{s} {n:,} samples ({n / SAMPLE_RATE:,.1f} s, {len(files[s])} files)"
                                      for s, n in meta["tokens"].items()) +
          f"; {len(clips)} files used, {len(skipped)} skipped, {ignored} non-audio files ignored")


if __name__ == "__main__":
    main_guard(main)

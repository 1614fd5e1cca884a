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
the formula of torchaudio's mu_law_encoding) without any gain change (tokens/mulaw.py). Files that
are not a readable WAV (other formats, empty or corrupt files) are skipped with a warning.

Split by file, so no recording is in two splits: names in natural order ("out2" before "out10"),
the first 88% train, the next 6% val, the rest test (at least one file each). For YouTubeMix's
241 clips that is the standard 212 / 14 / 15 (clips 0-211 / 212-225 / 226-240).
The one exception: with fewer than 3 files there is no file split, so each file is cut in time:
its first 90% is train, the next 5% val, the last 5% test.
"""
import argparse
import os
import re
import sys
import zipfile

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np
from tqdm import tqdm

from errors import UserError, main_guard, reason
from dataset import DatasetError, write_dataset
from prepare.common import parse_args, prepare_command, warn_skipped
from tokens.mulaw import SAMPLE_RATE, MuLaw, encode_file

HF_REPO = "krandiash/youtubemix"
HF_URL = f"https://huggingface.co/datasets/{HF_REPO}"
WAV_EXTENSIONS = (".wav", ".wave")
OTHER_AUDIO = (".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")
FRACTIONS = (0.88, 0.06)  # train, val; test gets the rest


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
        raise DatasetError(f"could not download {HF_REPO} ({reason(e, 200)}); accept its terms "
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
    args = parse_args(p)
    source = args.input or download_youtubemix(args.cache)
    root, names = find_files(source)
    wavs = [n for n in names if n.lower().endswith(WAV_EXTENSIONS)]
    not_wav = [f"{n} (not WAV: convert it, e.g. ffmpeg -i in.mp3 out.wav)" for n in names
               if n.lower().endswith(OTHER_AUDIO)]
    ignored = len(names) - len(wavs) - len(not_wav)
    if not wavs and os.path.isfile(source):
        raise DatasetError(f"--input {source} is not a .wav file; pass a WAV file or a folder of them" +
                           (" (convert it first, e.g. ffmpeg -i in.mp3 out.wav)" if not_wav else ""))
    if not wavs:
        raise DatasetError(f"no .wav files in {source}" + (f" ({len(not_wav)} other audio files: convert them "
                           "to WAV, e.g. with ffmpeg)" if not_wav else "") + "; pass a folder of WAV files")
    clips, skipped = {}, []
    for name in tqdm(wavs, desc="mu-law encoding", unit="file"):
        try:
            ids = encode_file(os.path.join(root, name))
        except UserError:  # scipy missing: no file can be read
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
        raise DatasetError(f"none of the {len(wavs)} .wav files in {source} is readable audio "
                           f"(first: {skipped[0]}); pass a folder of WAV files")
    splits, files, rule = split_clips(clips)
    cmd = prepare_command("youtubemix", p, args)
    meta = dict(MuLaw.facts(), files=files, split_rule=rule, source=args.input or HF_URL, prepare=cmd)
    meta = write_dataset(args.out, splits, meta)
    print(f"{args.out}: " + ", ".join(f"{s} {n:,} samples ({n / SAMPLE_RATE:,.1f} s, {len(files[s])} files)"
                                      for s, n in meta["tokens"].items()) +
          f"; {len(clips)} files used, {len(skipped)} skipped, {ignored} non-audio files ignored")


if __name__ == "__main__":
    main_guard(main)

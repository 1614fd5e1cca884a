"""
Decompress an Equal-Info dataset (prepare/equal_info.py): one split's tokens back to the exact bytes
of its text, through the M1 that meta.json names, from the tokens alone (the stored byte counts are
read only by --check).

    python decode.py --data=data/books_ei16 --split=val --output=val.txt
    python decode.py --data=data/books_ei16 --split=train --check=True        # against the text it was made from
    python decode.py --data=data/books_ei16 --m1=elsewhere/ckpt.pt --output=val.txt   # M1 moved (same weights)

--check=True reads the dataset's --input again, splits it as the prepare script did, and compares
every window with the bytes it stood for. --report=FILE writes the numbers (bytes, windows,
seconds, mismatches) as JSON. --workers: processes decoding streams side by side (default: one per
core, 512 KB of text each at least); the text does not depend on it (equal_info/m1.py). Tokens of an
earlier version of the coder are refused with the command that rebuilds them.
"""
import json
import os
import sys
import time
from dataclasses import dataclass

if __name__ == '__main__':  # before the slow imports below, so that Ctrl-C there exits quietly
    from errors import quiet_interrupts
    quiet_interrupts()
import numpy as np

from checks import at_least
from errors import ConfigError, main_guard
from settings import parse_config
from dataset import DTYPES, open_split, read_meta, read_streams, tokenizer_for
from outputs import check_file, write_atomically
from texts import input_text, split_text
from equal_info.coder import EqualInfo, cores, decode_parts, decode_streams, unpack


@dataclass
class DecodeConfig:
    data: str = ''        # the dataset folder, e.g. data/books_ei16
    split: str = 'val'
    output: str = ''      # write the decoded bytes here
    m1: str = ''          # M1's checkpoint, if not at the path meta.json records (its weights must match)
    check: bool = False   # compare with the text the dataset was made from, window by window
    report: str = ''      # write the numbers as JSON here
    overwrite: bool = False  # --output and --report may replace a file that exists (never a checkpoint or a dataset's)
    workers: int = 0      # processes decoding streams (0: one per core, 512 KB of text each at least)

    def __post_init__(self):
        at_least(self, 0, 'workers')


def source_split(meta, split):
    """The bytes of one split of the text a dataset was made from (meta.json's source), split as the prepare
    script did."""
    source = meta.get('source')
    if not isinstance(source, str) or not (source == 'pydocs' or os.path.exists(source)):
        raise ConfigError(f"--check compares with {source!r}, the text this dataset was made from (meta.json's source), "
                          f"which is not there; put it back, or decode without --check")
    return split_text(input_text(source))[split]


def main(argv):
    c, _ = parse_config(argv, (DecodeConfig,), __doc__)
    if not c['data']:
        raise ConfigError("give the dataset: --data=data/<name> (an Equal-Info dataset)")
    if c['output'] and os.path.abspath(c['output']) == os.path.abspath(c['report']):
        raise ConfigError(f"--output and --report are both {c['output']}; give each its own file")
    for setting in ('output', 'report'):
        if c[setting]:
            check_file(c[setting], c['overwrite'], f'--{setting}')  # now, not after the decoding
    meta = read_meta(c['data'])
    if meta.get('tokenizer') != EqualInfo.name:
        raise ConfigError(f"{c['data']} holds {meta.get('tokenizer')!r} tokens; decode.py decodes Equal-Info datasets "
                          f"(prepare/equal_info.py)")
    if c['split'] not in meta['tokens']:
        raise ConfigError(f"{c['data']} has no split {c['split']!r}; it has {', '.join(meta['tokens'])}")
    tok = tokenizer_for(meta)  # its fields checked
    tok.check_windows()        # tokens of an earlier coder, or edited fields: the rebuild command, before any work
    streams = read_streams(c['data'], meta, c['split'])
    original = source_split(meta, c['split']) if c['check'] else None  # a moved source fails now, not after decoding
    m1 = tok.byte_model(c['m1'] or None)
    values = unpack(open_split(c['data'], meta, c['split']), meta['bits'], meta['token_bits'])
    start = time.time()
    workers = c['workers'] or cores()
    windows = decode_streams(m1.coder(meta['cap']), values, streams, meta['bits'], workers=workers)
    seconds = time.time() - start
    data = b''.join(windows)
    report = {'data': c['data'], 'split': c['split'], 'bytes': len(data), 'windows': len(windows),
              'seconds': round(seconds, 2), 'bytes_per_second': round(len(data) / max(seconds, 1e-6)), 'm1': m1.hash,
              'workers': len(decode_parts(streams, workers))}  # the processes that ran
    print(f"decoded {len(data):,} bytes from {len(windows):,} windows in {seconds:.1f} s "
          f"({report['bytes_per_second']:,} bytes/s)")
    if c['check']:
        counts = np.fromfile(os.path.join(c['data'], f"{c['split']}.bytes.bin"), dtype=DTYPES[meta['byte_counts']['dtype']])
        ends = np.cumsum(counts).tolist()
        bad = sum(w != original[e - n:e] for w, n, e in zip(windows, counts.tolist(), ends))
        # a window that differs where the whole text does not: {split}.bytes.bin (bits per byte) is damaged
        report.update(original_bytes=len(original), mismatched_windows=bad, identical=data == original and not bad)
        print(f"check against {meta['source']} ({c['split']}): {len(original):,} bytes, {bad} of {len(windows):,} "
              f"windows differ; " + ("identical" if report['identical'] else "NOT identical"))
    if c['output']:
        def write(tmp):
            with open(tmp, 'wb') as f:
                f.write(data)
        print(f"wrote {write_atomically(c['output'], write)}")
    if c['report']:
        def write(tmp):
            with open(tmp, 'w') as f:
                json.dump(report, f, indent=1)
        write_atomically(c['report'], write)
    if c['check'] and not report['identical']:
        sys.exit(1)


if __name__ == '__main__':
    main_guard(main, sys.argv[1:])

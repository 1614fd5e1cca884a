"""
The Equal-Info study's table, from what the runs left behind (no training here):

    python results/equal_info/make_table.py            # -> results/equal_info/table.md, table.json

For each corpus and tokenization: data/<corpus>_<kind>/ (meta.json, val.bin, val.bytes.bin), M2's
out/m2_<corpus>_<kind>/log.jsonl (its last record: the final evaluation), M1's out/m1_<corpus>/log.jsonl,
and decode.py's reports in results/equal_info/logs/decode_<corpus>_*.json. How the runs were made:
results/equal_info/README.md.
"""
import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KINDS = [('bytes', 'Bytes', 1.29), ('spm', 'SentencePiece', 1.12), ('ei16', 'EqualInfoAC[b=16, v=65k]', 1.25),
         ('ei8', 'EqualInfoAC[b=16, v=256]', 1.47)]  # the paper's bits/byte at 25M parameters, 200k steps


def read_log(run):
    with open(os.path.join(ROOT, 'out', run, 'log.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    return lines[0], [r for r in lines if 'iter' in r]


def bytes_per_token(data_dir, meta, split):
    counts = np.fromfile(os.path.join(data_dir, f'{split}.bytes.bin'), dtype=meta['byte_counts']['dtype'])
    return counts.sum(dtype=np.int64) / meta['tokens'][split]


def row(corpus, kind, label, paper):
    data_dir = os.path.join(ROOT, 'data', f'{corpus}_{kind}')
    with open(os.path.join(data_dir, 'meta.json')) as f:
        meta = json.load(f)
    header, records = read_log(f'm2_{corpus}_{kind}')
    c, last = header['config'], records[-1]
    embedding = meta['vocab_size'] * c['n_embd']  # tied with the output layer
    non_embedding = header['params'] - embedding  # 'params' already leaves out the positions
    bpt = bytes_per_token(data_dir, meta, 'val')
    m1_params = meta['m1']['params'] if 'm1' in meta else 0
    out = {'corpus': corpus, 'method': label, 'v': meta['vocab_size'], 'bytes_per_token': bpt,
           'bits_per_byte': last['val_bpb'], 'paper_bits_per_byte': paper, 'uniform_bits_per_byte': math.log2(meta['vocab_size']) / bpt,
           'iters': last['iter'], 'tokens_seen': last['iter'] * header['tokens_per_iter'],
           'text_seen_bytes': last['iter'] * header['tokens_per_iter'] * bytes_per_token(data_dir, meta, 'train'),
           'm2_non_embedding_params': non_embedding,
           'flops_per_byte': 2 * non_embedding / bpt + 2 * m1_params,
           'flops_per_byte_with_output_layer': 2 * (non_embedding + embedding) / bpt + 2 * m1_params,
           'compress_bytes_per_s': None, 'decompress_bytes_per_s': None, 'm2_run': f'out/m2_{corpus}_{kind}'}
    if kind == 'spm':
        out['compress_bytes_per_s'] = meta['bytes_per_second']['encode']
        out['decompress_bytes_per_s'] = meta['bytes_per_second']['decode']
    if 'stats' in meta:
        stats = meta['stats'].values()
        out['compress_bytes_per_s'] = sum(s['bytes'] for s in stats) / sum(s['seconds'] for s in stats)
        out['m1_in_window_bits_per_byte'] = meta['stats']['val']['m1_bits_per_byte']
        report = os.path.join(HERE, 'logs', f'decode_{corpus}_{kind}.json')
        if os.path.exists(report):
            with open(report) as f:
                out['decompress_bytes_per_s'] = json.load(f)['bytes_per_second']
    return out


def number(x, fmt):
    return '-' if x is None else format(x, fmt)


def main():
    rows = [row(corpus, kind, label, paper) for corpus in ('pydocs', 'books') for kind, label, paper in KINDS
            if os.path.exists(os.path.join(ROOT, 'out', f'm2_{corpus}_{kind}', 'log.jsonl'))]
    m1 = {}
    for corpus in ('pydocs', 'books'):
        if os.path.exists(os.path.join(ROOT, 'out', f'm1_{corpus}', 'log.jsonl')):
            header, records = read_log(f'm1_{corpus}')
            m1[corpus] = {'val_bits_per_byte': records[-1]['val_bpb'], 'params': header['params_total'],
                          'iters': records[-1]['iter']}
    lines = ['| corpus | method | v | bytes/token (val) | M2 bits/byte (val) | paper, 25M | uniform M2 | '
             'text seen | FLOPs/byte (spec) | with output layer | compress B/s | decompress B/s |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['corpus']} | {r['method']} | {r['v']:,} | {r['bytes_per_token']:.3f} | "
                     f"{r['bits_per_byte']:.3f} | {r['paper_bits_per_byte']:.2f} | {r['uniform_bits_per_byte']:.2f} | "
                     f"{r['text_seen_bytes'] / 1e6:.2f} MB | "
                     f"{r['flops_per_byte'] / 1e6:.2f}M | {r['flops_per_byte_with_output_layer'] / 1e6:.2f}M | "
                     f"{number(r['compress_bytes_per_s'], ',.0f')} | {number(r['decompress_bytes_per_s'], ',.0f')} |")
    for corpus, m in m1.items():
        window = next((r['m1_in_window_bits_per_byte'] for r in rows if r['corpus'] == corpus and 'm1_in_window_bits_per_byte' in r), None)
        lines.append(f"\nM1 ({corpus}): {m['params']:,} parameters, {m['iters']} steps; {m['val_bits_per_byte']:.3f} bits/byte "
                     f"on its validation chunks (BOS + 16 bytes), {number(window, '.3f')} bits/byte inside the "
                     f"validation windows (the coder's exact information).")
    with open(os.path.join(HERE, 'table.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(os.path.join(HERE, 'table.json'), 'w') as f:
        json.dump({'rows': rows, 'm1': m1}, f, indent=1, default=float)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()

"""
Equal-Info Windows (Lester et al., "Training LLMs over Neurally Compressed Text", arXiv 2404.03626):
text compressed by an arithmetic coder that a small byte-level GPT drives, in windows that each
compress to exactly b bits, as the tokens of a second GPT. A learned tokenizer, so it lives here and
not in tokens/ (which holds the plain ones and imports no model):

    windows.py   the exact integer arithmetic of a window (plain, and for many rows in numpy), the Delay rule
    m1.py        M1, the byte-level GPT, run in integers: the same numbers in any batch, order or thread count
    coder.py     streams of windows coded side by side (and in worker processes), packing bits into tokens,
                 the EqualInfo tokenizer

prepare/equal_info.py builds a dataset with it, decode.py turns one back into text.
"""
from equal_info.coder import EqualInfo  # noqa: F401  (the tokenizer, for dataset.tokenizer_for)

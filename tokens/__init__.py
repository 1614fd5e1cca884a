"""
Every plain kind of token this project trains on, in one place: how a kind encodes (from text or a
file) and decodes (to text or a file), and its vocabulary facts. The prepare scripts use a kind to
build a dataset; the other scripts get the kind a meta.json names through dataset.tokenizer_for(),
which adds the one learned kind, Equal-Info windows (equal_info/). Nothing here imports a model.

A kind is a Tokenizer subclass (tokens/base.py) in its own file, listed once in KINDS below.
"""
from errors import UserError
from tokens.bytes import Bytes
from tokens.chars import Chars
from tokens.gpt2 import GPT2
from tokens.midi import MidiEvents
from tokens.mulaw import MuLaw
from tokens.spm import SentencePiece

KINDS = {kind.name: kind for kind in (Chars, GPT2, MuLaw, MidiEvents, Bytes, SentencePiece)}


def for_meta(meta, kinds=KINDS):
    """The tokenizer of a dataset (or a checkpoint) from its meta.json fields. kinds: these plain ones, or
    with Equal-Info's too (dataset.tokenizer_for, which everything but the prepare scripts uses)."""
    kind = meta.get('tokenizer')
    if not isinstance(kind, str) or kind not in kinds:
        raise UserError(f"unknown tokenizer {kind!r} in meta.json; known: {', '.join(kinds)} "
                        f"(rebuild the dataset with a prepare/ script)")
    for key, want in kinds[kind].facts().items():  # the fields of this kind have the types its own facts have
        have = meta.get(key, want)
        if want is not None and type(have) is not type(want) and not (type(want) is float and type(have) is int):
            raise UserError(f"meta.json of these {kind} tokens has {key}={repr(have)[:40]}, which should be a "
                            f"{type(want).__name__} (rebuild the dataset with a prepare/ script)")
    return kinds[kind](meta)


def differ(a, b, kinds=KINDS):
    """How the tokens of two meta.json (a checkpoint's, a dataset's) differ, in a few words, or None if an id means
    the same in both: the same kind, and the same facts of that kind (alphabet, vocabulary, M1, window size...)."""
    if a.get('tokenizer') != b.get('tokenizer'):
        return f"{a.get('tokenizer')} tokens against {b.get('tokenizer')}"
    kind = kinds.get(a['tokenizer'])
    ia, ib = (kind.identity(m) for m in (a, b)) if kind else ({}, {})
    for key in ia.keys() & ib.keys():  # a key only one has was added since, with its default meaning
        if ia[key] != ib[key]:
            return f"{a['tokenizer']} tokens with another {key}"
    return None

"""text8's characters: 27 symbols, space and a-z (the paper's text tokens)."""
import re

import numpy as np

from errors import UserError
from tokens.base import Tokenizer

ALPHABET = " abcdefghijklmnopqrstuvwxyz"
DIGITS = str.maketrans({d: f" {w} " for d, w in zip("0123456789", "zero one two three four five six seven eight nine".split())})


def normalize(text):
    """Any text -> text8's alphabet, the way text8 was made (Mahoney's wikifil.pl): lowercase,
    digits spelled out ("1984" -> " one nine eight four "), every other non-letter to a space,
    runs of spaces to one."""
    text = text.lower().translate(DIGITS)
    return re.sub(r"[^a-z]+", " ", text)


def encode(text):
    """Normalised text -> uint8 ids (space 0, a-z 1..26)."""
    table = np.zeros(256, dtype=np.uint8)
    for i, c in enumerate(ALPHABET):
        table[ord(c)] = i
    return table[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]


def decode(ids):
    return "".join(ALPHABET[i] for i in ids)


class Chars(Tokenizer):
    name = "chars"

    @classmethod
    def facts(cls):
        return {"vocab_size": len(ALPHABET), "dtype": "uint8", "modality": "text", "tokenizer": cls.name,
                "itos": ALPHABET}

    def encode(self, text):
        """A prompt -> ids, as text8 was made (lowercase, digits spelled out); a character that would become a space
        (one this alphabet has no letter for: punctuation, accents, other scripts) is refused, not dropped unsaid."""
        lost = sorted(set(re.sub(r"[a-z0-9\s]+", "", text.lower())))
        if lost:
            shown = " ".join(repr(c) for c in lost[:10]) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
            raise UserError(f"the prompt holds characters that this model has no tokens for: {shown}; its alphabet "
                            f"is a-z and space (capitals are lowered, digits spelled out): leave them out")
        return encode(normalize(text) or " ")

    def decode(self, ids):
        itos = self.meta["itos"]
        return "".join(itos[i] for i in ids)

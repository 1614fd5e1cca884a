"""UTF-8 bytes: the 256 byte values, and BOS (id 256), which starts a text or an Equal-Info window.

M1, the model that drives the Equal-Info coder, is a GPT over these tokens: it scores a window's
first byte after BOS alone. The same kind serves as M2's byte baseline. Text decodes with
errors='replace', so any ids give text (an incomplete UTF-8 character becomes U+FFFD)."""
import numpy as np

from tokens.base import Tokenizer

BOS = 256
VOCAB_SIZE = 257


class Bytes(Tokenizer):
    name = "bytes"

    @classmethod
    def facts(cls):
        return {"vocab_size": VOCAB_SIZE, "dtype": "uint16", "modality": "text", "tokenizer": cls.name, "bos": BOS}

    def encode(self, text):
        """Text -> its UTF-8 bytes as ids (no BOS)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)

    def decode(self, ids):
        return bytes(i for i in ids if i != BOS).decode("utf-8", errors="replace")

    def start(self):
        return [BOS]

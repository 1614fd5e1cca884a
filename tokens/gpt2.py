"""GPT-2's byte-pair encoding (tiktoken's "gpt2", 50,257 ids).

tiktoken downloads the encoding (about 1.5 MB) on first use and caches it in $TIKTOKEN_CACHE_DIR
(default: data-gym-cache in the temp folder). Offline: run any tiktoken GPT-2 encode once on a
machine with network, copy that cache folder here, and point TIKTOKEN_CACHE_DIR at it."""
import numpy as np

from errors import UserError, reason
from tokens.base import Tokenizer

VOCAB_SIZE = 50257
_encoding = None


def get_encoding():
    """tiktoken's GPT-2 encoding, loaded once. A one-line UserError when it cannot be had offline."""
    global _encoding
    if _encoding is None:
        try:
            import tiktoken
        except ImportError:
            raise UserError("BPE needs tiktoken: pip install tiktoken")
        try:
            _encoding = tiktoken.get_encoding("gpt2")
        except Exception as e:  # requests' ConnectionError offline; others for a bad cache
            raise UserError(f"could not load tiktoken's GPT-2 encoding, which it downloads on first use "
                            f"({reason(e, 90)}); run once with network, or set "
                            f"TIKTOKEN_CACHE_DIR to a folder holding tiktoken's cached gpt2 files")
    return _encoding


class GPT2(Tokenizer):
    name = "gpt2"

    @classmethod
    def facts(cls):
        return {"vocab_size": VOCAB_SIZE, "dtype": "uint16", "modality": "text", "tokenizer": cls.name}

    def encode(self, text):
        """Text -> uint16 ids (special tokens are encoded as plain text)."""
        return np.array(get_encoding().encode_ordinary(text), dtype=np.uint16)

    def decode(self, ids):
        return get_encoding().decode([int(i) for i in ids])

    def start(self):
        return self.encode("\n").tolist()

    def end_of_document(self):
        return get_encoding().eot_token

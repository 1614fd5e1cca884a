"""SentencePiece subwords (the paper's subword baseline; it used T5's 32k unigram vocabulary), trained
offline on the training text by prepare/spm.py. Lossless by construction: no normalisation, no
dummy prefix, spaces kept as they are, newline a piece of its own, and bytes for any character
outside the vocabulary (byte fallback), so decoding gives back the exact text and every token
stands for a known number of UTF-8 bytes. The trained model travels in meta.json (base64), so a
checkpoint decodes on its own. Needs the sentencepiece package (pip install sentencepiece)."""
import base64
import io

import numpy as np

from errors import UserError
from tokens.base import Tokenizer

SPACE = "\u2581"  # how SentencePiece writes a space inside a piece


def library():
    try:
        import sentencepiece
    except ImportError:
        raise UserError("SentencePiece tokens need the sentencepiece package: pip install sentencepiece")
    return sentencepiece


def train(lines, vocab_size):
    """A unigram model trained on an iterable of lines (without their newlines): its serialised bytes."""
    out = io.BytesIO()
    library().SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, user_defined_symbols=["\n"],
        hard_vocab_limit=False,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, num_threads=1, minloglevel=2)
    return out.getvalue()


class SentencePiece(Tokenizer):
    name = "sentencepiece"

    @classmethod
    def facts(cls, model=b""):
        vocab_size = library().SentencePieceProcessor(model_proto=model).get_piece_size() if model else 0
        return {"vocab_size": vocab_size, "dtype": "uint16", "modality": "text", "tokenizer": cls.name,
                "spm_model": base64.b64encode(model).decode("ascii")}

    def __init__(self, meta=None):
        super().__init__(meta)
        self._processor = None

    def processor(self):
        if self._processor is None:
            self._processor = library().SentencePieceProcessor(model_proto=base64.b64decode(self.meta["spm_model"]))
        return self._processor

    def encode(self, text):
        return np.array(self.processor().encode(text), dtype=np.uint16)

    def decode(self, ids):
        return self.processor().decode([int(i) for i in ids])

    def byte_lengths(self):
        """How many UTF-8 bytes each id stands for: 1 for a byte piece, 0 for a control piece."""
        sp = self.processor()
        return np.array([1 if sp.is_byte(i) else 0 if sp.is_control(i) or sp.is_unknown(i)
                         else len(sp.id_to_piece(i).replace(SPACE, " ").encode("utf-8"))
                         for i in range(sp.get_piece_size())], dtype=np.int64)

    def start(self):
        return self.encode("\n").tolist()

"""What every kind of token provides (see tokens/__init__.py)."""
import os

from errors import UserError, a
from outputs import write_atomically

MEDIA_SUFFIXES = ('.wav', '.mid', '.midi')  # what the sound and music kinds write


class Tokenizer:
    """One kind of token. A subclass sets the facts and implements what its kind can do."""
    name = None          # the name in meta.json ("tokenizer")
    suffix = '.txt'      # the file a sample is written to
    suffixes = ()        # the endings a sample file may have; () for text: any but MEDIA_SUFFIXES
    text = True          # samples read as text (printed), or only as a file (sound, music)
    ordered = None       # range of the ids that are ordered bins of one quantity (e.g. audio levels), or None

    @classmethod
    def identity(cls, meta):
        """What says what each id of a meta.json means: two that agree on it have the same tokens."""
        return {k: meta[k] for k in cls.facts() if k in meta}

    def __init__(self, meta=None):
        self.meta = meta or self.facts()

    @classmethod
    def facts(cls):
        """The meta.json fields of this kind: vocab_size, dtype, modality, tokenizer, and what decoding needs."""
        raise NotImplementedError

    def encode(self, text):
        """A text prompt -> ids."""
        raise UserError(f"{a(self.meta['modality'])} model takes no text prompt; give a file: --start=FILE:x{self.suffix}")

    def decode(self, ids):
        """ids -> text (text kinds)."""
        raise NotImplementedError

    def read(self, path):
        """A prompt file -> ids. Text kinds: UTF-8 text without NUL bytes (which binary files such as .wav have)."""
        try:
            with open(path, encoding='utf-8') as f:
                text = f.read()
        except UnicodeDecodeError:
            text = '\0'
        if '\0' in text:
            raise UserError(f"{path} is not UTF-8 text; {a(self.meta['modality'])} model takes a text prompt file")
        return self.encode(text)

    def ready(self):
        """Load or check now, before a sampler's work, whatever decode() and write() will need (a library, a model)."""

    def check_output_name(self, path):
        """A one-line error if a sample of this kind would be written under a name that says another kind."""
        ext = os.path.splitext(path)[1].lower()
        if (ext not in self.suffixes) if self.suffixes else ext in MEDIA_SUFFIXES:
            raise UserError(f"--output={path}: this {self.meta['modality']} model writes {self.suffix} files, "
                            f"not {ext or 'a name without a suffix'}; name it x{self.suffix}")

    def write(self, ids, path):
        """ids -> a file (text kinds: the decoded text), written atomically."""
        text = self.decode(ids)

        def write(tmp):
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(text)
        return write_atomically(path, write)

    def start(self):
        """A neutral first token, for sampling without a prompt."""
        return [0]

    def prompt(self, start):
        """sample.py's --start: '' (a neutral token), text, or FILE:path."""
        if not start:
            return self.start()
        if start.startswith('FILE:'):
            path = start[5:]
            if not os.path.isfile(path):
                raise UserError(f"prompt file {path} " + ("is a folder" if os.path.isdir(path) else "does not exist"))
            if os.path.getsize(path) == 0:
                raise UserError(f"prompt file {path} is empty; give one with something in it, or no prompt")
            ids = self.read(path)
        else:
            ids = self.encode(start)
        ids = [int(i) for i in ids]
        if not ids:
            raise UserError(f"the prompt {start!r} gives no tokens; give a longer one, or none")
        return ids

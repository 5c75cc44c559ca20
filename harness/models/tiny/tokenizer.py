"""A character tokenizer: one id per printable ASCII character, plus pad, bos, eos and unk."""

from __future__ import annotations

import json
import string
from pathlib import Path

PAD, BOS, EOS, UNK = 0, 1, 2, 3
_SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
_CHARS = "\n" + "".join(c for c in string.printable if c.isprintable())  # 95 printable + newline


class CharTokenizer:
    pad_id, bos_id, eos_id, unk_id = PAD, BOS, EOS, UNK
    never_generated = (PAD, BOS)  # masked out of every next-token distribution, in sampling and scoring

    def __init__(self, chars: str = _CHARS):
        self.chars = chars
        self._ids = {c: i + len(_SPECIALS) for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(_SPECIALS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(c, UNK) for c in text]

    def decode(self, ids: list[int]) -> str:
        """Text of the ids up to the first eos; specials other than unk are dropped."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(_SPECIALS):
                out.append(self.chars[i - len(_SPECIALS)])
            elif i == UNK:
                out.append("\ufffd")
        return "".join(out)

    def save(self, directory: Path) -> None:
        (Path(directory) / "tokenizer.json").write_text(json.dumps({"type": "char", "specials": _SPECIALS,
                                                                      "chars": self.chars}))

    @classmethod
    def load(cls, directory: Path) -> CharTokenizer:
        data = json.loads((Path(directory) / "tokenizer.json").read_text())
        return cls(data["chars"])

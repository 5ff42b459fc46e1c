"""The word vocabulary: built from the train split only, words seen at least ``min_count`` times.

Paper §5 "Pre-processing": "a vocabulary of words that occur at least 5 times in train". (The
authors' public code kept words seen *more than* 5 times; we follow the paper, and ``min_count``
is a param.) Ids 0-3 are the special tokens below; the rest are sorted by descending count, then
alphabetically, so the vocabulary is deterministic.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.atomic import write_json
from pipeline.errors import InputError

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
SPECIALS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = range(4)


class Vocabulary:
    """``itos[i]`` is the token with id ``i``; ``stoi`` is its inverse."""

    def __init__(self, itos: Sequence[str], min_count: int | None = None):
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.itos = list(itos)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        self.min_count = min_count

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, counts: Counter, min_count: int) -> Vocabulary:
        """Keep tokens with ``count >= min_count`` (ties broken alphabetically)."""
        kept = sorted(
            (tok for tok, n in counts.items() if n >= min_count and tok not in SPECIALS),
            key=lambda tok: (-counts[tok], tok),
        )
        return cls([*SPECIALS, *kept], min_count)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self.stoi.get
        return [get(tok, UNK_ID) for tok in tokens]

    def decode(self, ids: Iterable[int], *, stop_at_end: bool = True) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if i == END_ID and stop_at_end:
                break
            if i not in (PAD_ID, START_ID):
                out.append(self.itos[i])
        return out

    def save(self, path: str | Path) -> None:
        write_json(path, {"itos": self.itos, "min_count": self.min_count}, indent=None)

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            return cls(data["itos"], data.get("min_count"))
        except FileNotFoundError:
            raise InputError(f"{path}: vocabulary file not found") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: not a valid vocab.json ({err})") from None

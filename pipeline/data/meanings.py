"""The demo's answer key, ``meanings.json`` (written by ``pipeline.demo.generate.meanings_doc``).

``answers``: what every answer string the demo writes means; ``rounds``: for every dialog of
every split, each round's question kind and truth (the fact in the image). Real VisDial has no
such file; ``pipeline.evaluation.meaning`` grades generated answers with it where it exists.
The ``prepare`` stage checks it (``data.meanings``) and copies it into ``data/prepared``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.atomic import atomic_path
from pipeline.data.tokenize import tokenize
from pipeline.errors import InputError

GENERIC = json.dumps(["generic"])  # the meaning of "i can't tell", "not sure" ...


@dataclass(frozen=True)
class Meanings:
    """What answers mean (by token tuple) and each round's (kind, truth), meanings as JSON text."""

    answers: dict[tuple[str, ...], str]
    rounds: dict[tuple[int, int], tuple[str, str]]  # (image_id, round_id 1-based) -> (kind, truth)


def load_meanings(path: Path) -> Meanings:
    """Read a ``meanings.json`` (all splits' rounds; image ids are unique across splits)."""
    try:
        doc = json.loads(path.read_text())
        answers = {
            tuple(tokenize(text)): json.dumps(meaning) for text, meaning in doc["answers"].items()
        }
        rounds = {
            (int(image_id), r + 1): (str(kind), json.dumps(truth))
            for split in doc["rounds"].values()
            for image_id, dialog in split.items()
            for r, (kind, truth) in enumerate(dialog)
        }
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{path}: not a meanings file (see docs/demo-dataset.md)") from None
    return Meanings(answers, rounds)




def write_meanings(path: Path, source: Path) -> None:
    """Check ``source`` (:func:`load_meanings`) and copy it to ``path`` atomically."""
    load_meanings(source)
    with atomic_path(path) as tmp:
        tmp.write_bytes(source.read_bytes())

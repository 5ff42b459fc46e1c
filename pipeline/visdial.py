"""Readers for VisDial v0.9 / v1.0 dialog JSON and v1.0 dense annotations.

They return the data "almost as is": the file's question and answer string lists, plus the
dialogs' indices packed into arrays (-1 where a round lacks a field). Tokenizing is elsewhere.

v1.0 *test* dialogs have fewer than 10 rounds, and only their last round has ``answer_options``
(no ``answer``, no ``gt_index``): those fields read as -1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

VERSIONS = ("0.9", "1.0")
ROUNDS = 10
OPTIONS = 100


@dataclass
class VisDialFile:
    path: str
    version: str
    split: str
    questions: list[str]
    answers: list[str]
    image_id: np.ndarray  # (N,) int64
    caption: list[str]  # N strings
    num_rounds: np.ndarray  # (N,) int32
    question: np.ndarray  # (N, R) int32 index into ``questions``, -1 = absent
    answer: np.ndarray  # (N, R) int32 index into ``answers``, -1 = absent
    gt_index: np.ndarray  # (N, R) int32 position of the answer among the options, -1 = unknown
    options: np.ndarray  # (N, R, 100) int32 indices into ``answers``, -1 = absent

    def __len__(self) -> int:
        return len(self.image_id)


@dataclass
class DenseAnnotations:
    image_id: np.ndarray  # (M,) int64
    round: np.ndarray  # (M,) int32, 0-based (the file's round_id is 1-based)
    relevance: np.ndarray  # (M, 100) float32


def _load_json(path: Path) -> object:
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a JSON file") from None
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def _get(obj: object, key: str, path: Path, where: str) -> object:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{path}: missing key '{where}{key}'")
    return obj[key]


def _index(value: object, size: int, path: Path, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise InputError(f"{path}: {where} = {value!r} is out of range (0..{size - 1})")
    return value


def read_visdial(path: str | Path) -> VisDialFile:
    """Read and validate one VisDial dialog file (any split of v0.9 or v1.0)."""
    path = Path(path)
    doc = _load_json(path)
    version = str(_get(doc, "version", path, ""))
    if version not in VERSIONS:
        raise InputError(
            f"{path}: unknown VisDial version '{version}' (expected one of {', '.join(VERSIONS)})"
        )
    split = str(doc.get("split", ""))
    data = _get(doc, "data", path, "")
    questions = _get(data, "questions", path, "data.")
    answers = _get(data, "answers", path, "data.")
    dialogs = _get(data, "dialogs", path, "data.")
    for key, value in (("questions", questions), ("answers", answers), ("dialogs", dialogs)):
        if not isinstance(value, list):
            raise InputError(f"{path}: 'data.{key}' must be a list")
    n, nq, na = len(dialogs), len(questions), len(answers)
    image_id = np.zeros(n, np.int64)
    num_rounds = np.zeros(n, np.int32)
    question = np.full((n, ROUNDS), -1, np.int32)
    answer = np.full((n, ROUNDS), -1, np.int32)
    gt_index = np.full((n, ROUNDS), -1, np.int32)
    options = np.full((n, ROUNDS, OPTIONS), -1, np.int32)
    caption = []
    for i, dialog in enumerate(dialogs):
        where = f"data.dialogs[{i}]."
        image_id[i] = _index(_get(dialog, "image_id", path, where), 2**62, path, where + "image_id")
        caption.append(str(_get(dialog, "caption", path, where)))
        rounds = _get(dialog, "dialog", path, where)
        if not isinstance(rounds, list) or len(rounds) > ROUNDS:
            raise InputError(f"{path}: '{where}dialog' must be a list of at most {ROUNDS} rounds")
        num_rounds[i] = len(rounds)
        for r, rnd in enumerate(rounds):
            at = f"{where}dialog[{r}]."
            question[i, r] = _index(_get(rnd, "question", path, at), nq, path, at + "question")
            if "answer" in rnd:
                answer[i, r] = _index(rnd["answer"], na, path, at + "answer")
            if "answer_options" in rnd:
                opts = rnd["answer_options"]
                if not isinstance(opts, list) or len(opts) != OPTIONS:
                    raise InputError(f"{path}: '{at}answer_options' must be a list of {OPTIONS}")
                options[i, r] = opts
                if "gt_index" in rnd:
                    gt_index[i, r] = _index(rnd["gt_index"], OPTIONS, path, at + "gt_index")
    bad = np.argwhere(options >= na)
    if len(bad) or (options < -1).any():
        i, r, o = (bad if len(bad) else np.argwhere(options < -1))[0]
        raise InputError(
            f"{path}: data.dialogs[{i}].dialog[{r}].answer_options[{o}] = {options[i, r, o]} "
            f"is out of range (0..{na - 1})"
        )
    return VisDialFile(
        str(path), version, split, [str(q) for q in questions], [str(a) for a in answers],
        image_id, caption, num_rounds, question, answer, gt_index, options,
    )  # fmt: skip


def read_dense(path: str | Path) -> DenseAnnotations:
    """Read v1.0 dense annotations ``[{image_id, round_id (1-based), gt_relevance[100]}]``."""
    path = Path(path)
    doc = _load_json(path)
    if not isinstance(doc, list):
        raise InputError(f"{path}: dense annotations must be a list of objects")
    m = len(doc)
    image_id = np.zeros(m, np.int64)
    rnd = np.zeros(m, np.int32)
    relevance = np.zeros((m, OPTIONS), np.float32)
    for i, item in enumerate(doc):
        where = f"[{i}]."
        image_id[i] = _index(_get(item, "image_id", path, where), 2**62, path, where + "image_id")
        round_id = _get(item, "round_id", path, where)
        rnd[i] = _index(round_id, ROUNDS + 1, path, where + "round_id") - 1
        if rnd[i] < 0:
            raise InputError(f"{path}: {where}round_id = 0, but round ids are 1-based")
        rel = _get(item, "gt_relevance", path, where)
        if not isinstance(rel, list) or len(rel) != OPTIONS:
            raise InputError(f"{path}: '{where}gt_relevance' must be a list of {OPTIONS} numbers")
        relevance[i] = rel
    return DenseAnnotations(image_id, rnd, relevance)

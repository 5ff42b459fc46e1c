"""Readers for VisDial v0.9 / v1.0 dialog JSON and v1.0 dense annotations.

They return the data "almost as is": the file's question and answer string lists, plus the
dialogs' indices packed into arrays (-1 where a round lacks a field). Tokenizing is elsewhere.

v1.0 *test* dialogs have fewer than 10 rounds, and only their last round has ``answer_options``
(no ``answer``, no ``gt_index``): those fields read as -1.
"""

from __future__ import annotations

import json
import re
import warnings
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

    def subset(self, rows: np.ndarray, path: str) -> VisDialFile:
        """Dialogs ``rows`` (in that order), sharing the string lists; ``path`` names it."""
        rows = np.asarray(rows, np.int64)
        return VisDialFile(
            path, self.version, self.split, self.questions, self.answers, self.image_id[rows],
            [self.caption[i] for i in rows.tolist()], self.num_rounds[rows], self.question[rows],
            self.answer[rows], self.gt_index[rows], self.options[rows],
        )  # fmt: skip


@dataclass
class DenseAnnotations:
    image_id: np.ndarray  # (M,) int64
    round: np.ndarray  # (M,) int32, 0-based (the file's round_id is 1-based)
    relevance: np.ndarray  # (M, 100) float32


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a JSON file") from None


def _load_json(path: Path) -> object:
    return _parse_json(_read_bytes(path), path)


_OPTIONS_LIST = re.compile(rb'"answer_options"\s*:\s*\[([^\]]*)\]')


def _load_dialog_json(path: Path) -> tuple[object, np.ndarray | None]:
    """Parse a dialog file, with a fast path for the 100-int ``answer_options`` lists.

    They are ~90% of a VisDial file (82 M ints for v0.9 train), which ``json`` turns into Python
    ints slowly and with GBs of memory. Each list is cut out by a regex, replaced by its row number
    in an (M, 100) int32 table parsed by numpy in one call, and the rest goes through ``json``.
    When any list is not exactly 100 non-negative ints, the file is parsed the ordinary way so
    that the error message can name the exact place; so is a file whose cut copy is not valid
    JSON (the copy's line and column are not the file's). Returns (document, table or None).
    """
    raw = _read_bytes(path)
    lists: list[bytes] = []

    def cut(match: re.Match) -> bytes:
        lists.append(match.group(1))
        return b'"answer_options": %d' % (len(lists) - 1)

    rest = _OPTIONS_LIST.sub(cut, raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        table = np.fromstring(b",".join(lists) or b"0", dtype=np.int64, sep=",")
    if lists and table.size == OPTIONS * len(lists) and table.min() >= 0:
        del raw
        try:
            doc = json.loads(rest)
        except (json.JSONDecodeError, UnicodeDecodeError):
            del rest  # the error's place is the file's own: parse the file itself (slow path)
            return _parse_json(_read_bytes(path), path), None
        return doc, table.astype(np.int32).reshape(len(lists), OPTIONS)
    return _parse_json(raw, path), None


def _parse_json(raw: bytes, path: Path) -> object:
    try:
        return json.loads(raw)
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
    doc, table = _load_dialog_json(path)
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
    table_rows: list[tuple[int, int, int]] = []  # (dialog, round, row of ``table``)
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
                if table is not None:  # the fast path left the list's row in ``table``
                    table_rows.append((i, r, opts))
                elif not isinstance(opts, list) or len(opts) != OPTIONS:
                    raise InputError(f"{path}: '{at}answer_options' must be a list of {OPTIONS}")
                else:
                    options[i, r] = opts
                if "gt_index" in rnd:
                    gt_index[i, r] = _index(rnd["gt_index"], OPTIONS, path, at + "gt_index")
    if table is not None:
        if len(table_rows) != len(table):  # an "answer_options" that was not a list
            raise InputError(f"{path}: every 'answer_options' must be a list of {OPTIONS}")
        i, r, row = np.asarray(table_rows, np.int64).reshape(-1, 3).T
        options[i, r] = table[row]  # (M, 100)
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

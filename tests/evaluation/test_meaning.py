"""Grading generated answers by meaning with the demo's answer key."""

from __future__ import annotations

import json

import pytest

from pipeline.data.meanings import load_meanings
from pipeline.data.tokenize import tokenize
from pipeline.demo.dialogs import ANSWER_MEANING
from pipeline.errors import InputError
from pipeline.evaluation.compare import Resampling
from pipeline.evaluation.meaning import grade, shares_by_kind

KEY = {
    "version": 1,
    "answers": {"red": ["colour", "red"], "it's red": ["colour", "red"],
                "blue": ["colour", "blue"], "yes": ["yn", True], "i can't tell": ["generic"]},
    "rounds": {"val": {"7": [["colour", ["colour", "red"]], ["exist", ["yn", True]]],
                       "8": [["colour", ["colour", "blue"]], ["unanswerable", ["generic"]]]}},
}  # fmt: skip


@pytest.fixture
def meanings(tmp_path):
    path = tmp_path / "meanings.json"
    path.write_text(json.dumps(KEY))
    return load_meanings(path)


def test_answers_are_graded_by_meaning_not_by_string(meanings):
    rounds = [
        {"image_id": 7, "round_id": 1},
        {"image_id": 7, "round_id": 2},
        {"image_id": 8, "round_id": 1},
        {"image_id": 8, "round_id": 2},
        {"image_id": 9, "round_id": 1},
    ]  # fmt: skip  (image 9: not in the key)
    answers = [tokenize("it's red"), ["blue"], tokenize("i can't tell"), tokenize("i can't tell"),
               ["red"]]  # fmt: skip
    got = grade(meanings, rounds, answers)
    assert [r["correct"] for r in got] == [True, False, False, True]  # a paraphrase is right
    assert [r["generic"] for r in got] == [False, False, True, True]
    shares = shares_by_kind(got, Resampling(resamples=500))
    assert shares["all"]["rounds"] == 4 and shares["all"]["correct"] == 0.5
    assert shares["colour"]["correct"] == 0.5 and shares["colour"]["generic"] == 0.5
    assert shares["exist"]["ci_low"] is None  # one dialog: no interval


def test_unknown_answer_is_unparsed_and_wrong(meanings):
    got = grade(meanings, [{"image_id": 7, "round_id": 1}], [["red", "red", "red"]])
    assert got == [{"image_id": 7, "kind": "colour", "correct": False, "generic": False,
                    "parsed": False}]  # fmt: skip


def test_a_broken_key_is_a_one_line_error(tmp_path):
    path = tmp_path / "meanings.json"
    path.write_text('{"answers": {}}')
    with pytest.raises(InputError, match="not a meanings file"):
        load_meanings(path)


def test_the_demo_key_covers_every_demo_answer(tmp_path):
    from pipeline.config import DemoConfig
    from pipeline.demo.generate import generate_demo

    generate_demo(tmp_path / "demo", DemoConfig(train_dialogs=3, val_dialogs=2))
    key = load_meanings(tmp_path / "demo" / "meanings.json")
    doc = json.loads((tmp_path / "demo" / "visdial_0.9_val.json").read_text())["data"]
    assert len(key.answers) == len(ANSWER_MEANING)
    for dialog in doc["dialogs"]:
        for r, rnd in enumerate(dialog["dialog"]):
            kind, truth = key.rounds[(dialog["image_id"], r + 1)]
            answer = json.loads(key.answers[tuple(tokenize(doc["answers"][rnd["answer"]]))])
            # the human answer means the truth, or is generic (GENERIC_RATE)
            assert answer in (json.loads(truth), ["generic"]), (kind, truth, answer)

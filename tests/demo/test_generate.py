"""The demo dataset generator: VisDial v0.9 format, options, determinism, grounding, CLI."""

from __future__ import annotations

import collections
import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from pipeline.config import DemoConfig
from pipeline.data.tokenize import tokenize
from pipeline.data.visdial import read_visdial
from pipeline.demo.dialogs import ANSWER_MEANING, GENERIC, answer_options, cell_names
from pipeline.demo.generate import build_split, check_demo_config, generate_demo
from pipeline.demo.scenes import COLOURS, GRID, SHAPES, nearest_colour
from pipeline.errors import InputError
from stages.cli import app

SMALL = DemoConfig(seed=3, train_dialogs=6, val_dialogs=3)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    generate_demo(out, SMALL)
    return out


def _load(demo_dir: Path, split: str) -> dict:
    return json.loads((demo_dir / f"visdial_0.9_{split}.json").read_text())


def _rounds(doc: dict):
    data = doc["data"]
    for dialog in data["dialogs"]:
        for rnd in dialog["dialog"]:
            yield dialog, rnd, data["questions"][rnd["question"]], data["answers"][rnd["answer"]]


def test_visdial_format(demo_dir):
    for split, count in (("train", 6), ("val", 3)):
        doc = _load(demo_dir, split)
        assert (doc["version"], doc["split"]) == ("0.9", split)
        assert set(doc["data"]) == {"questions", "answers", "dialogs"}
        assert len(doc["data"]["dialogs"]) == count
        for dialog in doc["data"]["dialogs"]:
            assert set(dialog) == {"image_id", "caption", "dialog"}
            assert len(dialog["dialog"]) == 10
            assert dialog["caption"] == dialog["caption"].lower()
            assert 3 <= len(tokenize(dialog["caption"])) <= 24
        for _, rnd, question, answer in _rounds(doc):
            assert set(rnd) == {"question", "answer", "gt_index", "answer_options"}
            assert not question.endswith("?") and question == question.lower()
            assert 2 <= len(tokenize(question)) <= 16 and 1 <= len(tokenize(answer)) <= 8
        read_visdial(demo_dir / f"visdial_0.9_{split}.json")  # the project's reader accepts it


def test_options_hold_the_truth_once_and_no_paraphrase_of_it(demo_dir):
    doc = _load(demo_dir, "train")
    answers = doc["data"]["answers"]
    positions = set()
    for _, rnd, _, answer in _rounds(doc):
        options = rnd["answer_options"]
        assert len(options) == 100 and len(set(options)) == 100
        assert options[rnd["gt_index"]] == rnd["answer"]
        same = [answers[o] for o in options if ANSWER_MEANING[answers[o]] == ANSWER_MEANING[answer]]
        assert same == [answer]
        positions.add(rnd["gt_index"])
    assert len(positions) > 20  # gt_index is spread over the 100 positions


def test_answer_options_hard_negatives_and_generic():
    import random

    options, gt_index = answer_options("it's red", random.Random(0))
    assert options[gt_index] == "it's red"
    kinds = collections.Counter(ANSWER_MEANING[o][0] for o in options)
    assert kinds["colour"] == 16  # the truth and all 15 paraphrases of the 5 other colours
    assert 3 <= kinds["generic"] <= 6
    options, gt_index = answer_options("not sure", random.Random(0))
    assert [o for o in options if ANSWER_MEANING[o] == GENERIC] == ["not sure"]


def test_image_ids_unique_and_images_exist(demo_dir):
    ids = [d["image_id"] for s in ("train", "val") for d in _load(demo_dir, s)["data"]["dialogs"]]
    assert ids == [1, 2, 3, 4, 5, 6, 500001, 500002, 500003]
    for image_id in ids:
        with Image.open(demo_dir / "images" / (SMALL.image_pattern % image_id)) as image:
            assert image.size == (224, 224) and image.mode == "RGB"
    assert len(list((demo_dir / "images").iterdir())) == len(ids)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_is_byte_identical_and_other_seed_differs(demo_dir, tmp_path):
    generate_demo(tmp_path / "again", SMALL)
    assert _files(tmp_path / "again") == _files(demo_dir)
    generate_demo(tmp_path / "other", replace(SMALL, seed=4))
    other = _files(tmp_path / "other")
    assert other.keys() == _files(demo_dir).keys()
    assert other["visdial_0.9_train.json"] != _files(demo_dir)["visdial_0.9_train.json"]
    assert other["images/demo_000000000001.png"] != _files(demo_dir)["images/demo_000000000001.png"]


def test_train_and_val_differ():
    train, val = build_split(SMALL, "train"), build_split(replace(SMALL, val_dialogs=6), "val")
    assert [d.caption for d in train] != [d.caption for d in val]


def test_answers_are_grounded_in_the_pixels(demo_dir):
    """The colour and position answered for an object match the image at the object's centre."""
    checked = collections.Counter()
    for split in ("train", "val"):
        for dialog in build_split(SMALL, split):  # same config: the scenes behind the files
            path = demo_dir / "images" / (SMALL.image_pattern % dialog.scene.image_id)
            image = Image.open(path).convert("RGB")
            for rnd in dialog.rounds:
                meaning = ANSWER_MEANING[rnd.answer]
                if rnd.subject is None or meaning == GENERIC:
                    continue
                obj = dialog.scene.objects[rnd.subject]
                x, y = int(obj.cx * image.width), int(obj.cy * image.height)
                if meaning[0] == "colour":
                    assert nearest_colour(image.getpixel((x, y))) == meaning[1]
                    checked["colour"] += 1
                if meaning[0] == "position":
                    assert (y * GRID // image.height, x * GRID // image.width) == meaning[1]
                    checked["position"] += 1
            free = {(r, c) for r in range(GRID) for c in range(GRID)} - {
                (o.row, o.col) for o in dialog.scene.objects
            }
            row, col = min(free)  # an empty cell shows the background at its centre
            pixel = image.getpixel(
                (
                    (2 * col + 1) * image.width // (2 * GRID),
                    (2 * row + 1) * image.height // (2 * GRID),
                )
            )
            assert nearest_colour(pixel) == dialog.scene.background
            checked["background"] += 1
    assert checked["colour"] >= 3 and checked["position"] >= 3


def _expected(question: str, objs) -> tuple | None:
    """Re-derive the answer to a count or existence question from the words and the scene."""
    words = tokenize(question)
    colours = [c for c in COLOURS if c in words]
    shapes = [s for s in SHAPES if s in words or s + "s" in words]
    rows = [r for r, w in enumerate(("top", "bottom")) if w in words]
    cols = [c for c, w in enumerate(("left", "right")) if w in words]
    matching = [
        o
        for o in objs
        if all(o.colour == c for c in colours)
        and all(o.shape == s for s in shapes)
        and all(o.row == r for r in rows)
        and all(o.col == c for c in cols)
    ]
    if words[:2] == ["how", "many"]:
        return ("count", len(matching))
    if "else" in words or "other" in words:
        return None
    if words[:2] in (["is", "there"], ["do", "you"], ["are", "there"], ["is", "something"]):
        return ("yn", bool(matching))
    return None


def test_answers_match_the_scene():
    """Counts, existence, shapes and 'anything else' answers agree with the scene."""
    seen = collections.Counter()
    for dialog in build_split(replace(SMALL, train_dialogs=40), "train"):
        objs = dialog.scene.objects
        for rnd in dialog.rounds:
            meaning = ANSWER_MEANING[rnd.answer]
            if meaning == GENERIC:
                continue
            if meaning[0] == "shape":
                assert objs[rnd.subject].shape == meaning[1]
            if rnd.kind in ("count", "exist"):
                assert meaning == _expected(rnd.question, objs), rnd.question
            if rnd.kind == "more" and meaning[1] is not None:
                obj = objs[rnd.subject]
                assert meaning[1] == (obj.row, obj.col)
            seen[rnd.kind] += 1
    assert {"colour", "shape", "position", "count", "exist", "more", "other"} <= set(seen)
    assert seen["count"] >= 20 and seen["exist"] >= 20


def test_coreference_needs_the_history():
    """'it' / 'the other one' questions appear, and the same words get answers of many meanings."""
    dialogs = build_split(replace(SMALL, train_dialogs=40), "train")
    small = build_split(SMALL, "train")
    assert any(
        "it" in tokenize(r.question) or "other" in r.question for d in small for r in d.rounds
    )
    by_question = collections.defaultdict(set)
    for d in dialogs:
        previous = None
        for rnd in d.rounds:
            by_question[rnd.question].add(ANSWER_MEANING[rnd.answer])
            if rnd.kind == "other":
                assert rnd.subject is not None and rnd.subject != previous.subject
                assert previous.kind in {"colour", "shape", "position", "size"}
            previous = rnd
    # the answer to "what about the other one" is a colour, a shape, a position or a yes/no
    kinds = {m[0] for m in by_question["what about the other one"]}
    assert len(kinds) >= 2
    assert len(by_question["what color is it"]) >= 3


def test_generic_answers_are_a_tenth_or_so():
    dialogs = build_split(replace(SMALL, train_dialogs=100), "train")
    answers = [r.answer for d in dialogs for r in d.rounds]
    share = sum(ANSWER_MEANING[a] == GENERIC for a in answers) / len(answers)
    assert 0.08 <= share <= 0.16
    # several phrasings of one meaning
    assert len({a for a in answers if ANSWER_MEANING[a] == ("yn", True)}) >= 5


def test_every_word_is_frequent_enough_at_default_size():
    """With the default 480 train dialogs every word (of options too) is seen >= 5 times."""
    counts = collections.Counter()
    option_words = set()
    for d in build_split(DemoConfig(), "train"):
        counts.update(tokenize(d.caption))
        for rnd in d.rounds:
            counts.update(tokenize(rnd.question) + tokenize(rnd.answer))
            option_words.update(w for o in rnd.options for w in tokenize(o))
    rare = sorted(w for w in set(counts) | option_words if counts[w] < 5)
    assert rare == []


def test_position_names():
    assert cell_names(0, 0) == ("top left", "at the top left")
    assert cell_names(0, 1) == ("top right", "at the top right")
    assert cell_names(1, 1) == ("bottom right", "at the bottom right")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"train_dialogs": 0}, "demo.train_dialogs"),
        ({"val_dialogs": 500_000}, "demo.val_dialogs"),
        ({"image_size": 32}, "demo.image_size"),
        ({"image_pattern": "demo.png"}, "demo.image_pattern"),
        ({"image_pattern": "sub/%d.png"}, "demo.image_pattern"),
        ({"image_pattern": "%d.gif"}, "demo.image_pattern"),
    ],
)
def test_bad_settings_name_the_key(change, key):
    with pytest.raises(InputError, match=key):
        check_demo_config(replace(SMALL, **change))


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="refusing"):
        generate_demo(tmp_path, SMALL)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_cli_reads_params_and_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        "demo:\n  seed: 5\n  train_dialogs: 2\n  val_dialogs: 1\n  image_size: 64\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["demo-data", "--out", "out"])
    assert result.exit_code == 0, result.output
    assert len(_load(Path("out"), "train")["data"]["dialogs"]) == 2
    with Image.open(Path("out/images/demo_000000500001.png")) as image:
        assert image.size == (64, 64)
    result = runner.invoke(
        app, ["demo-data", "--out", "out", "--train-dialogs", "3", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert len(_load(Path("out"), "train")["data"]["dialogs"]) == 3
    assert len(list(Path("out/images").iterdir())) == 4  # the old directory was replaced


def test_cli_bad_input_is_one_line_and_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo-data", "--out", "out", "--train-dialogs", "0"])
    assert result.exit_code == 1
    assert "error: params.yaml: demo.train_dialogs = 0" in result.output
    assert not Path("out").exists()

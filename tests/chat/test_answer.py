"""``visdial answer``: G's answers for a VisDial file, batched over dialogs (pipeline/answer.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from pipeline.chat.answer import Decoding, answer_rounds, generate
from pipeline.chat.dialog import file_arrays, file_batch
from pipeline.data.visdial import read_visdial
from stages.cli import app
from tests.chat.test_chat import answerer, make_workspace
from tests.conftest import visdial_doc

runner = CliRunner()
V09 = visdial_doc(
    [("a red ball", [("is it red", "yes"), ("what color is the dog", "blue"), ("one", "two")]),
     ("a dog", [("is there a dog?", "yes , one"), ("is it blue", "no .")])],
    split="val",
)  # fmt: skip
# v1.0 test: fewer than 10 rounds, the last one has options but no answer / gt_index.
V10_TEST = {
    "version": "1.0",
    "split": "test",
    "data": {
        "questions": ["is it red", "what color is it", "is there a dog"],
        "answers": ["yes", "blue", "no"],
        "dialogs": [
            {"image_id": 7, "caption": "a blue ball", "dialog": [
                {"question": 0, "answer": 0}, {"question": 1, "answer": 1},
                {"question": 2, "answer_options": [2] * 100}]},
            {"image_id": 8, "caption": "a dog", "dialog": [
                {"question": 2, "answer_options": [0] * 100}]},
        ],
    },
}  # fmt: skip


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    (tmp_path / "images").mkdir()
    for image_id in (7, 8, 100, 101):
        pixels = rng.integers(0, 255, (50 + image_id % 7, 60, 3), np.uint8)
        Image.fromarray(pixels).save(tmp_path / "images" / f"img_{image_id:012d}.png")
    (tmp_path / "v09.json").write_text(json.dumps(V09))
    (tmp_path / "test.json").write_text(json.dumps(V10_TEST))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: 2 threads on a busy 2-core box are ~100x slower
    yield tmp_path
    torch.set_num_threads(threads)


def answer(*args: str, dialogs="test.json", out="out.json"):
    return runner.invoke(
        app, ["answer", "--dialogs", dialogs, "--images", "images", "--out", out,
              "--pattern", "img_%012d.png", *args],
    )  # fmt: skip


def test_output_format_on_a_v10_test_file(ws):
    result = answer()
    assert result.exit_code == 0, result.output
    rows = json.loads((ws / "out.json").read_text())
    assert [(r["image_id"], r["round_id"], r["question"]) for r in rows] == [
        (7, 1, "is it red"), (7, 2, "what color is it"), (7, 3, "is there a dog"),
        (8, 1, "is there a dog"),
    ]  # fmt: skip
    assert all(set(r) == {"image_id", "round_id", "question", "answer"} for r in rows)
    assert all(isinstance(r["answer"], str) for r in rows)
    assert "4 rounds of 2 dialogs" in result.output


def test_answers_equal_a_chat_with_the_human_answers_as_history(ws):
    """Round t of the batch = one decode of round t's encoding with the human history."""
    a = answerer()
    file = read_visdial(ws / "v09.json")
    arrays = file_arrays(file, a.vocab, a.max_len)
    image = torch.randn(2, 4, 512)  # (B, K, 512)
    batch = file_batch(arrays, np.arange(2), image)
    ids, lengths = answer_rounds(a.model, batch, a.decoding, a.rng())
    for b in range(2):
        for t in range(int(file.num_rounds[b])):
            one = file_batch(arrays, np.array([b]), image[b : b + 1])
            e = a.model.encode(one)[t : t + 1]  # (1, D)
            want, want_len = generate(a.model.decoder, e, a.decoding, a.rng())
            assert int(lengths[b, t]) == int(want_len[0])
            assert torch.equal(ids[b, t, : int(want_len[0])], want[0, : int(want_len[0])])


def test_unanswered_round_gets_gs_own_answer_in_later_history(ws):
    a = answerer()
    arrays = file_arrays(read_visdial(ws / "v09.json"), a.vocab, a.max_len)
    batch = file_batch(arrays, np.array([0]), torch.randn(1, 4, 512))
    batch.answer_len[0, 1] = 0  # round 2 lost its human answer
    ids, lengths = answer_rounds(a.model, batch, a.decoding, a.rng())
    assert lengths[0, 1] > 0
    filled = dataclasses.replace(
        batch, answer=batch.answer.clone(), answer_len=batch.answer_len.clone()
    )
    filled.answer[0, 1], filled.answer_len[0, 1] = ids[0, 1], lengths[0, 1]
    e = a.model.encode(filled)[2:3]  # (1, D): round 3 with G's answer to round 2 as history
    assert not torch.allclose(e, a.model.encode(batch)[2:3])  # that history matters
    want, want_len = generate(a.model.decoder, e, a.decoding, a.rng())
    assert int(lengths[0, 2]) == int(want_len[0]) and torch.equal(ids[0, 2], want[0])


def test_deterministic_and_batch_size_independent(ws):
    outs = []
    for i, size in enumerate(("1", "2", "2")):
        result = answer("--batch-size", size, dialogs="v09.json", out=f"o{i}.json")
        assert result.exit_code == 0, result.output
        outs.append((ws / f"o{i}.json").read_text())
    assert outs[0] == outs[1] == outs[2]
    assert len(json.loads(outs[0])) == 5


def test_missing_images_one_line_and_no_output(ws):
    (ws / "images" / "img_000000000008.png").unlink()
    result = answer()
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "1 image(s) of test.json not found with pattern 'img_%012d.png'" in result.stderr
    assert "img_000000000008.png" in result.stderr and not (ws / "out.json").exists()


def test_pattern_defaults_to_features_patterns_of_the_split(ws):
    params = (
        (ws / "params.yaml")
        .read_text()
        .replace("features:", "features:\n  patterns: {val: img_%012d.png}")
    )
    (ws / "params.yaml").write_text(params)
    for dialogs, code in (("v09.json", 0), ("test.json", 1)):  # split val / test
        result = runner.invoke(app, ["answer", "--dialogs", dialogs, "--images", "images",
                                     "--out", "o.json"])  # fmt: skip
        assert result.exit_code == code, result.output
    assert "split 'test' has no features.patterns entry: give --pattern" in result.stderr


def test_decoding_settings_are_checked():
    with pytest.raises(Exception, match="chat.beam_size"):
        Decoding("beam", beam_size=0)


def test_bad_pattern_is_one_line(ws):
    result = answer("--pattern", "img.png")
    assert result.exit_code == 1
    assert "--pattern 'img.png': expected one printf field" in result.stderr

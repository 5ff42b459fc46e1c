import json

import h5py
from typer.testing import CliRunner

from pipeline.data.vocab import Vocabulary
from stages.cli import app
from tests.conftest import visdial_doc

runner = CliRunner()
TRAIN = visdial_doc([("a red ball", [("is it red", "yes")] * 3)] * 3)


def test_prepare_writes_outputs_and_role_comes_from_option(tmp_path, write_visdial, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = write_visdial("t.json", {**TRAIN, "split": "val"})  # split field says val: ignored
    val = write_visdial("v.json", visdial_doc([("x", [("y", "z")])], split="train"))
    result = runner.invoke(
        app, ["prepare", "--train", str(train), "--val", str(val), "--out", "out",
              "--min-count", "9"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Vocabulary.load(tmp_path / "out/vocab.json").itos[4:] == ["red", "?", "is", "it", "yes"]
    with h5py.File(tmp_path / "out/dialogs.h5", "r") as h5:
        assert set(h5) == {"train", "val"} and len(h5["train/image_id"]) == 3


def test_settings_come_from_params_yaml(tmp_path, write_visdial, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = write_visdial("t.json", TRAIN)
    (tmp_path / "params.yaml").write_text(
        f"data: {{train: {train}, val: {train}}}\nprepare: {{min_count: 13}}\n"
    )
    result = runner.invoke(app, ["prepare", "--out", "out"])
    assert result.exit_code == 0, result.output
    assert (
        Vocabulary.load(tmp_path / "out/vocab.json").itos[4:] == []
    )  # "red" is the most frequent: 12 times


def test_bad_input_one_line_exit_1_and_no_output(tmp_path, write_visdial, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = write_visdial("t.json", TRAIN)
    bad = write_visdial("v.json", json.dumps({**TRAIN, "version": "3"}))
    result = runner.invoke(app, ["prepare", "--train", str(good), "--val", str(bad), "--out", "o"])
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == f"error: {bad}: unknown VisDial version '3' (expected one of 0.9, 1.0)"
    )
    assert not (tmp_path / "o" / "dialogs.h5").exists()
    assert not (tmp_path / "o" / "vocab.json").exists()


def test_unknown_params_key_exits_1(tmp_path, write_visdial, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("prepare: {min_cnt: 3}\n")
    result = runner.invoke(app, ["prepare", "--out", "o"])
    assert result.exit_code == 1
    assert "unknown key 'prepare.min_cnt'" in result.stderr


def test_help_lists_every_option():
    result = runner.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0
    for option in ("--train", "--val", "--test", "--dense", "--out", "--min-count"):
        assert option in result.output

import json

import h5py
import pytest
from typer.testing import CliRunner

from pipeline.data.vocab import Vocabulary
from stages.cli import app
from tests.conftest import visdial_doc

runner = CliRunner()
TRAIN = visdial_doc([("a red ball", [("is it red", "yes")] * 3)] * 3)
TEST = visdial_doc([("x", [("y", "z")])], split="train", first_id=500)


@pytest.fixture
def files(tmp_path, write_visdial, monkeypatch):
    """train.json (3 dialogs; its split field says val: ignored) and test.json, in the cwd."""
    monkeypatch.chdir(tmp_path)
    return write_visdial("t.json", {**TRAIN, "split": "val"}), write_visdial("v.json", TEST)


def _prepare(*args: str):
    return runner.invoke(app, ["prepare", "--out", "out", *args])


def test_roles_come_from_the_options_and_val_is_held_out(tmp_path, files):
    train, test = files
    result = _prepare("--train", str(train), "--test", str(test), "--val-from-train", "1",
                      "--min-count", "6")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dialogs: train 2, val 1, test 1" in result.output
    # words of the 2 remaining train dialogs only: "red" 2 * (1 + 3) = 8 times, "yes" 6 times
    assert Vocabulary.load(tmp_path / "out/vocab.json").itos[4:] == ["red", "?", "is", "it", "yes"]
    with h5py.File(tmp_path / "out/dialogs.h5", "r") as h5:
        assert list(h5) == ["test", "train", "val"] and len(h5["train/image_id"]) == 2
        held = set(h5["val/image_id"][()]) | set(h5["train/image_id"][()])
        assert held == {100, 101, 102}
    stats = json.loads((tmp_path / "out/stats.json").read_text())
    assert stats["dialogs"] == {"train": 2, "val": 1, "test": 1}


def test_settings_come_from_params_yaml(tmp_path, files):
    train, test = files
    (tmp_path / "params.yaml").write_text(
        f"data: {{train: {train}, test: {test}}}\n"
        "prepare: {min_count: 9, val_from_train: 1, seed: 1}\n"
    )
    result = _prepare()
    assert result.exit_code == 0, result.output
    assert Vocabulary.load(tmp_path / "out/vocab.json").itos[4:] == []  # "red": 8 times < 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--val-from-train", "0"], "no val split: data.val is '' and prepare.val_from_train is 0"),
        (["--val-from-train", "3"], "prepare.val_from_train = 3: must be between 1 and 2"),
        (["--val", "t.json"], "(train) and t.json (val) share 3 image id(s), e.g. 100, 101, 102"),
        (["--test", ""], "no test file: give --test F"),
    ],
)
def test_bad_roles_one_line_exit_1_and_no_output(tmp_path, files, args, message):
    train, test = files
    result = _prepare("--train", str(train), "--test", str(test), *args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_without_test_it_says_a_test_file_is_needed_and_how_to_give_it(tmp_path, files):
    """No --test: the params default (data/demo/visdial_0.9_val.json) does not exist here."""
    train, test = files
    result = _prepare("--train", str(train), "--val", str(test))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert (
        "no --test given, and params.yaml's data.test (data/demo/visdial_0.9_val.json) does not "
        "exist: a test file is needed; give --test F, or set data.test in params.yaml"
    ) in result.stderr
    assert not (tmp_path / "out").exists()


def test_overlap_is_allowed_on_request(tmp_path, files):
    train, test = files
    result = _prepare("--train", str(train), "--test", str(train), "--val", str(test),
                      "--allow-overlap")  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_file_outside_data_dir_is_refused(tmp_path, files):
    train, test = files
    result = _prepare("--train", str(train), "--test", str(test), "--inside", "data/visdial")
    assert result.exit_code == 1
    assert "is not inside data.dir (data/visdial)" in result.stderr


def test_bad_file_one_line_exit_1_and_no_output(tmp_path, files, write_visdial):
    train, _ = files
    bad = write_visdial("bad.json", json.dumps({**TEST, "version": "3"}))
    result = _prepare("--train", str(train), "--test", str(bad))
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == f"error: {bad}: unknown VisDial version '3' (expected one of 0.9, 1.0)"
    )
    assert not (tmp_path / "out").exists()


def test_unknown_params_key_exits_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("prepare: {min_cnt: 3}\n")
    result = _prepare()
    assert result.exit_code == 1
    assert "unknown key 'prepare.min_cnt'" in result.stderr


def test_help_lists_every_option():
    result = runner.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0
    for option in ("--train", "--val", "--val-from-train", "--test", "--challenge", "--dense",
                   "--out", "--min-count", "--allow-overlap"):  # fmt: skip
        assert option in result.output

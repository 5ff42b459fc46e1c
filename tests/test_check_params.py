"""``visdial check-params``: everything it can know about params.yaml and the data.* paths fails
there (one line naming the key and the path, exit 1), before DVC deletes any stage's output."""

from __future__ import annotations

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from stages.cli import app
from stages.params import read_yaml
from tests.conftest import REPO

runner = CliRunner()
REAL = {  # the README's layout for real VisDial v0.9
    "dir": "data/visdial",
    "train": "data/visdial/visdial_0.9_train.json",
    "val": "",
    "test": "data/visdial/visdial_0.9_val.json",
    "meanings": "",
    "images": "data/coco",
}
COCO = {"train": "train2014/COCO_train2014_%012d.jpg", "val": "train2014/COCO_train2014_%012d.jpg",
        "test": "val2014/COCO_val2014_%012d.jpg"}  # fmt: skip


@pytest.fixture
def real(tmp_path, monkeypatch):
    """A workspace (the cwd) holding real-VisDial-like files, without the demo."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/visdial").mkdir(parents=True)
    (tmp_path / "data/coco").mkdir()
    for key in ("train", "test"):
        (tmp_path / REAL[key]).write_text("{}")
    return tmp_path


def _check(tmp_path, data: dict | None = None, features: dict | None = None, demo=None):
    params = {"data": {**REAL, **(data or {})}, "demo": {"dirs": demo or []},
              "features": {"patterns": {**COCO, **(features or {})}}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return runner.invoke(app, ["check-params", "--out", "checks/params.json"])


def _fails(result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_the_readme_layout_passes(real):
    result = _check(real)
    assert result.exit_code == 0, result.output
    assert (real / "checks/params.json").is_file()


def test_a_file_outside_data_dir_fails_here_not_in_prepare(real):
    (real / "data/bad_train.json").write_text("{}")
    result = _check(real, {"train": "data/bad_train.json"})
    _fails(result, "data.train: data/bad_train.json is not inside data.dir (data/visdial)")
    assert not (real / "checks").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"test": "data/visdial/visdial_0.9_test.json"},
         "data.test: data/visdial/visdial_0.9_test.json: file not found"),
        ({"val": "data/visdial/val.json"}, "data.val: data/visdial/val.json: file not found"),
        ({"dense": "data/visdial"}, "data.dense: data/visdial is not inside data.dir"),
        ({"train": "data/visdial/x"}, "data.train: data/visdial/x: file not found"),
        ({"images": "data/images"}, "data.images: data/images: folder not found"),
        ({"images": "data/visdial/visdial_0.9_train.json"},
         "data.images: data/visdial/visdial_0.9_train.json: not a folder"),
        ({"dir": "data/vd", "train": "data/vd/t.json"}, "data.dir: data/vd: folder not found"),
        ({"test": ""}, "data.test is empty: it must name the reported split"),
    ],
)  # fmt: skip
def test_a_missing_file_fails_naming_key_and_path(real, data, message):
    _fails(_check(real, data), "params.yaml: ", message)


def test_a_folder_given_as_a_file_fails(real):
    (real / "data/visdial/dir.json").mkdir()
    _fails(
        _check(real, {"val": "data/visdial/dir.json"}),
        "data.val: data/visdial/dir.json: not a file",
    )


@pytest.mark.parametrize(
    ("features", "data", "message"),
    [
        ({"test": "COCO_%s_%d.jpg"}, {}, "features.patterns.test: 'COCO_%s_%d.jpg'"),
        ({"val": "no_field.jpg"}, {}, "features.patterns.val: 'no_field.jpg': expected a printf"),
        ({}, {"challenge": "data/visdial/visdial_1.0_test.json"},
         "features.patterns: no file-name pattern for split 'challenge'"),
    ],
)  # fmt: skip
def test_a_malformed_or_missing_pattern_fails(real, features, data, message):
    (real / "data/visdial/visdial_1.0_test.json").write_text("{}")
    _fails(_check(real, data, features), message)


def test_a_fresh_demo_passes_before_demo_data_has_run(tmp_path, monkeypatch):
    """The repository's params.yaml on a fresh clone: data/demo is not generated yet."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    assert read_yaml("params.yaml")["demo"]["dirs"] == ["data/demo"]
    result = runner.invoke(app, ["check-params", "--out", "checks/params.json"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "data").exists()


DEMO = {"dir": "data/demo", "train": "data/demo/visdial_0.9_train.json", "val": "",
        "test": "data/demo/visdial_0.9_val.json", "meanings": "data/demo/meanings.json",
        "images": "data/demo/images"}  # fmt: skip


def test_a_users_own_file_inside_the_demo_folder_fails(real):
    """demo_data replaces data/demo as a whole: a file of one's own there would vanish."""
    (real / "data/demo").mkdir()
    (real / "data/demo/mine.json").write_text("{}")
    result = _check(real, {**DEMO, "test": "data/demo/mine.json"}, demo=["data/demo"])
    _fails(result, "data.test: data/demo/mine.json is inside data/demo, which the demo_data stage",
           "keep your own files in a data.dir of their own")  # fmt: skip


def test_the_demo_folder_is_still_held_to_data_dir(real):
    result = _check(real, {**DEMO, "dir": "data/visdial"}, demo=["data/demo"])
    _fails(result, "data.train: data/demo/visdial_0.9_train.json is not inside data.dir")

import json

import numpy as np
import pytest

from pipeline.data.visdial import read_dense, read_visdial
from pipeline.errors import InputError
from tests.conftest import visdial_doc

DOC = visdial_doc([("a red ball", [("is it red", "yes"), ("how many", "one")])])


def test_reads_real_v1_val_samples(samples):
    file = read_visdial(samples / "visdial_1.0_val_crowdsourced.json")
    assert file.version == "1.0" and len(file) == 97
    assert len(file.questions) == 45237 and len(file.answers) == 34821
    assert (file.num_rounds == 10).all()
    rows = np.arange(len(file))[:, None]
    rounds = np.arange(10)[None, :]
    # the ground truth sits at gt_index among the options
    assert (file.options[rows, rounds, file.gt_index] == file.answer).all()


def test_reads_real_dense_annotations(samples):
    dense = read_dense(samples / "visdial_1.0_val_dense_annotations_vispro.json")
    assert dense.relevance.shape == (len(dense.image_id), 100)
    assert dense.round.min() >= 0 and dense.round.max() <= 9


def test_v1_test_split_short_dialog_with_last_round_options(write_visdial):
    doc = visdial_doc([("cap", [("q1", "a1"), ("q2", "a2"), ("q3", "a3")])], "1.0", "test2018")
    rounds = doc["data"]["dialogs"][0]["dialog"]
    for rnd in rounds[:-1]:
        del rnd["answer_options"], rnd["gt_index"]
    del rounds[-1]["answer"], rounds[-1]["gt_index"]
    file = read_visdial(write_visdial("test.json", doc))
    assert file.num_rounds[0] == 3
    assert (file.gt_index[0] == -1).all()
    assert file.answer[0, 2] == -1 and file.answer[0, 1] >= 0
    assert (file.options[0, :2] == -1).all() and (file.options[0, 2] >= 0).all()
    assert (file.question[0, 3:] == -1).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "malformed JSON at line 1"),
        (json.dumps({"version": "0.9", "data": {"questions": [], "answers": []}}), "data.dialogs"),
        (json.dumps({**DOC, "version": "2.0"}), "unknown VisDial version '2.0'"),
    ],
)
def test_bad_files_name_the_file_and_problem(write_visdial, text, message):
    path = write_visdial("bad.json", text)
    with pytest.raises(InputError, match=message) as err:
        read_visdial(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_json_names_the_files_own_line_and_column(write_visdial):
    """The fast path parses a copy with the options lists cut out: an error after them must
    still be placed in the file itself (it was "line 1 column 31391" for char 100000)."""
    dialogs = json.dumps(DOC["data"]["dialogs"] * 40)  # 100-int options lists: the fast path
    text = (
        '{"version": "0.9", "split": "train",\n'
        f'"data": {{"questions": {json.dumps(DOC["data"]["questions"])},\n'
        f'"answers": {json.dumps(DOC["data"]["answers"])}, "dialogs": {dialogs},, "x": 1}}}}\n'
    )
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    assert want.value.lineno == 3 and want.value.colno > 10_000  # far into line 3
    with pytest.raises(InputError) as err:
        read_visdial(write_visdial("bad.json", text))
    where = f"malformed JSON at line 3 column {want.value.colno}: "
    assert where in str(err.value) and "\n" not in str(err.value), err.value


def test_option_index_out_of_range_names_the_place(write_visdial):
    doc = json.loads(json.dumps(DOC))
    doc["data"]["dialogs"][0]["dialog"][1]["answer_options"][7] = 999
    with pytest.raises(InputError, match=r"dialogs\[0\]\.dialog\[1\]\.answer_options\[7\] = 999"):
        read_visdial(write_visdial("bad.json", doc))


def test_missing_key_is_named(write_visdial):
    doc = json.loads(json.dumps(DOC))
    del doc["data"]["dialogs"][0]["caption"]
    with pytest.raises(InputError, match=r"missing key 'data\.dialogs\[0\]\.caption'"):
        read_visdial(write_visdial("bad.json", doc))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_visdial(tmp_path / "nope.json")

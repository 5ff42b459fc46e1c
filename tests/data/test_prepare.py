import json

import h5py
import numpy as np
import pytest

from pipeline.config import MaxLen
from pipeline.data.prepare import count_words, hold_out, prepare
from pipeline.data.visdial import read_dense, read_visdial
from pipeline.data.vocab import UNK_ID, Vocabulary
from pipeline.errors import InputError
from tests.conftest import visdial_doc

# "red" appears 5 times in train (in, min_count=5), "blue" 4 times (out), "green" only in val.
TRAIN = [
    ("a red ball", [("is it red", "yes red"), ("what colour", "red")]),
    ("the box", [("blue or red", "blue"), ("is there blue", "blue , yes")]),
]
VAL = [("green ball", [("is it green", "green")])]


@pytest.fixture
def prepared(tmp_path, write_visdial):
    files = {
        "train": read_visdial(write_visdial("train.json", visdial_doc(TRAIN))),
        "val": read_visdial(write_visdial("val.json", visdial_doc(VAL, split="val", first_id=200))),
    }
    prepare(files, tmp_path / "out", min_count=5, max_len=MaxLen(24, 16, 8))
    return tmp_path / "out"


def test_vocab_threshold_counts_train_occurrences(prepared):
    vocab = Vocabulary.load(prepared / "vocab.json")
    assert "red" in vocab.stoi  # seen exactly 5 times
    assert "blue" not in vocab.stoi  # seen 4 times
    assert "green" not in vocab.stoi  # val only


def test_count_words_weights_shared_strings_by_use(write_visdial):
    doc = visdial_doc([("x", [("q", "same"), ("q", "same"), ("q", "same")])])
    counts = count_words(read_visdial(write_visdial("t.json", doc)), MaxLen())
    assert counts["same"] == 3 and counts["q"] == 3 and counts["?"] == 3
    assert "filler" not in counts  # in the answer list but never used by a dialog


def test_hdf5_contract(prepared):
    with h5py.File(prepared / "dialogs.h5", "r") as h5:
        assert set(h5) == {"train", "val"}
        g = h5["train"]
        n = 2
        expected = {
            "image_id": (n,), "caption": (n, 24), "caption_len": (n,),
            "question": (n, 10, 16), "question_len": (n, 10), "answer": (n, 10, 8),
            "answer_len": (n, 10), "num_rounds": (n,), "options": (n, 10, 100),
            "gt_index": (n, 10),
        }  # fmt: skip
        for name, shape in expected.items():
            assert g[name].shape == shape, name
        pool, pool_len = g["answer_pool"][:], g["answer_pool_len"][:]
        assert pool.shape[1] == 8 and pool_len.shape == (pool.shape[0],)
        # the gt option's tokens are the answer's tokens
        opts, gt, ans = g["options"][:], g["gt_index"][:], g["answer"][:]
        for i in range(n):
            for r in range(g["num_rounds"][i]):
                assert (pool[opts[i, r, gt[i, r]]] == ans[i, r]).all()
        # rounds a dialog lacks are 0-length and unknown
        assert (g["question_len"][:, 2:] == 0).all() and (g["gt_index"][:, 2:] == -1).all()
        # left-aligned, 0-padded
        q, q_len = g["question"][:], g["question_len"][:]
        for i, r in np.argwhere(q_len > 0):
            assert (q[i, r, : q_len[i, r]] > 0).all() and (q[i, r, q_len[i, r] :] == 0).all()
        vocab = Vocabulary.load(prepared / "vocab.json")
        assert vocab.decode(q[0, 0]) == ["<unk>", "<unk>", "red", "<unk>"]  # "is it red ?"
        val_caption = h5["val/caption"][0]
        assert val_caption[0] == UNK_ID  # "green" is val-only


def test_truncation(tmp_path, write_visdial):
    long = " ".join(["word"] * 40)
    doc = visdial_doc([(long, [(long, long)])] * 5)
    files = {"train": read_visdial(write_visdial("t.json", doc))}
    prepare(files, tmp_path / "o", min_count=1, max_len=MaxLen(24, 16, 8))
    with h5py.File(tmp_path / "o" / "dialogs.h5", "r") as h5:
        assert h5["train/caption_len"][0] == 24
        assert h5["train/question_len"][0, 0] == 16
        assert h5["train/answer_len"][0, 0] == 8


def test_real_samples_with_dense(tmp_path, samples):
    files = {
        "train": read_visdial(samples / "visdial_1.0_val_crowdsourced.json"),
        "val": read_visdial(samples / "visdial_1.0_val_vispro.json"),
    }
    dense = read_dense(samples / "visdial_1.0_val_dense_annotations_vispro.json")
    files["test"] = files.pop("val")  # the dense annotations belong to the reported split
    summary = prepare(files, tmp_path, min_count=5, max_len=MaxLen(), dense=dense,
                      allow_overlap=True)  # the two sample files share 8 images  # fmt: skip
    assert summary["dialogs"]["test"] == 76
    with h5py.File(tmp_path / "dialogs.h5", "r") as h5:
        rounds = h5["test/dense_round"][:]
        assert (rounds >= 0).sum() == len(dense.image_id)
        assert h5["test/dense_relevance"].shape == (76, 100)
        assert h5["test/answer_pool"].shape == (34821, 8)


def test_real_samples_overlap_is_refused_naming_both_files(tmp_path, samples):
    train = read_visdial(samples / "visdial_1.0_val_crowdsourced.json")
    test = read_visdial(samples / "visdial_1.0_val_vispro.json")
    with pytest.raises(InputError) as err:
        prepare({"train": train, "test": test}, tmp_path, min_count=5, max_len=MaxLen())
    message = str(err.value)
    assert "\n" not in message and "share 8 image id(s)" in message
    assert train.path in message and test.path in message and "allow_overlap" in message
    assert not any(tmp_path.iterdir())  # nothing written


def test_hold_out_is_seeded_disjoint_and_leaves_train(tmp_path, samples):
    file = read_visdial(samples / "visdial_1.0_val_crowdsourced.json")
    rest, held = hold_out(file, 10, seed=3)
    again_rest, again_held = hold_out(file, 10, seed=3)
    assert list(held.image_id) == list(again_held.image_id)  # deterministic
    assert list(hold_out(file, 10, seed=4)[1].image_id) != list(held.image_id)
    assert len(held) == 10 and len(rest) == len(file) - 10
    assert not set(held.image_id.tolist()) & set(rest.image_id.tolist())
    assert sorted([*held.image_id.tolist(), *rest.image_id.tolist()]) == sorted(file.image_id.tolist())
    row = {int(i): k for k, i in enumerate(file.image_id)}
    k = row[int(held.image_id[0])]  # the held-out dialog keeps its rounds
    assert (held.question[0] == file.question[k]).all() and held.caption[0] == file.caption[k]
    for n in (0, len(file)):
        with pytest.raises(InputError, match="val_from_train"):
            hold_out(file, n, seed=0)


def test_options_equal_to_the_answer_are_counted(tmp_path, write_visdial):
    doc = visdial_doc([("a cat", [("is it big", "Yes"), ("color", "black")])])
    doc["data"]["answers"] += ["yes.", "YES"]  # "yes." differs by a token, "YES" does not
    for rnd in doc["data"]["dialogs"][0]["dialog"]:
        rnd["answer_options"][-2:] = [len(doc["data"]["answers"]) - 2, len(doc["data"]["answers"]) - 1]
    stats = prepare({"train": read_visdial(write_visdial("t.json", doc))}, tmp_path,
                    min_count=1, max_len=MaxLen())  # fmt: skip
    assert stats["options_equal_to_answer"] == {"train": 1}  # "YES" in the round answered "Yes"
    assert json.loads((tmp_path / "stats.json").read_text()) == stats

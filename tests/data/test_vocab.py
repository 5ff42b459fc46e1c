from collections import Counter

import pytest

from pipeline.data.vocab import END_ID, PAD_ID, SPECIALS, UNK_ID, Vocabulary
from pipeline.errors import InputError


def test_min_count_is_inclusive():
    vocab = Vocabulary.build(Counter({"five": 5, "four": 4, "six": 6}), min_count=5)
    assert "five" in vocab.stoi and "six" in vocab.stoi
    assert "four" not in vocab.stoi


def test_specials_first_then_by_count_then_alphabetical():
    vocab = Vocabulary.build(Counter({"b": 7, "a": 7, "c": 9}), min_count=1)
    assert vocab.itos == [*SPECIALS, "c", "a", "b"]
    assert vocab.stoi["<pad>"] == PAD_ID == 0


def test_encode_unknown_and_decode_stops_at_end():
    vocab = Vocabulary([*SPECIALS, "red"])
    assert vocab.encode(["red", "blue"]) == [4, UNK_ID]
    assert vocab.decode([4, UNK_ID, END_ID, 4]) == ["red", "<unk>"]


def test_save_load_roundtrip(tmp_path):
    vocab = Vocabulary([*SPECIALS, "x", "y"], min_count=5)
    vocab.save(tmp_path / "vocab.json")
    again = Vocabulary.load(tmp_path / "vocab.json")
    assert again.itos == vocab.itos and again.min_count == 5


def test_load_bad_file_names_it(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text("{")
    with pytest.raises(InputError, match="vocab.json"):
        Vocabulary.load(path)

from pipeline.data.tokenize import tokenize, tokenize_question


def test_lowercases_and_splits_punctuation():
    assert tokenize("Yes, 2 Cats.") == ["yes", ",", "2", "cats", "."]


def test_contractions_and_possessives_stay_one_token():
    assert tokenize("I can't tell, it's the man's hat") == [
        "i", "can't", "tell", ",", "it's", "the", "man's", "hat",
    ]  # fmt: skip


def test_question_gains_exactly_one_question_mark():
    assert tokenize_question("is it red", 16) == ["is", "it", "red", "?"]
    assert tokenize_question("Is it red??", 16) == ["is", "it", "red", "?"]


def test_question_truncation_keeps_question_mark_last():
    tokens = tokenize_question(" ".join(f"w{i}" for i in range(30)), 16)
    assert len(tokens) == 16
    assert tokens[-1] == "?"
    assert tokens[:3] == ["w0", "w1", "w2"]

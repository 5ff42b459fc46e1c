"""Diversity of generated answers (paper §5.3: G-MLE "predominantly produces 'safe' and less
informative answers, such as 'Yes' and or 'I can't tell'"; G-DIS is "more diverse").

Answers are token lists (``Vocabulary.decode`` output). Over a list of N answers:

* ``distinct_answers``: number of different answers (as token sequences); ``distinct_share`` =
  that / N;
* ``distinct_1`` / ``distinct_2``: distinct unigrams / bigrams divided by the total number of
  unigrams / bigrams (Li et al. 2016); bigrams are taken within an answer only;
* ``generic``: share of answers equal, as a whole, to one of the ``generic`` phrases (tokenized
  with the project tokenizer, so ``"I can't tell."`` and ``i can't tell .`` match alike);
* ``mean_length``: mean number of tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline.data.tokenize import tokenize

KEYS = ("answers", "distinct_answers", "distinct_share", "distinct_1", "distinct_2", "generic",
        "mean_length")  # fmt: skip


def generic_set(phrases: Iterable[str]) -> set[tuple[str, ...]]:
    """Phrases as token tuples, final punctuation dropped (``"no."`` == ``"no"``)."""
    return {_strip(tuple(tokenize(p))) for p in phrases}


def _strip(tokens: tuple[str, ...]) -> tuple[str, ...]:
    while tokens and tokens[-1] in {".", "!", ","}:
        tokens = tokens[:-1]
    return tokens


def diversity(answers: Sequence[Sequence[str]], generic: Iterable[str] = ()) -> dict[str, float]:
    """The metrics of the module doc over ``answers`` (zeros for an empty list)."""
    n = len(answers)
    seqs = [tuple(a) for a in answers]
    unigrams = [tok for a in seqs for tok in a]
    bigrams = [pair for a in seqs for pair in zip(a, a[1:], strict=False)]
    phrases = generic_set(generic)
    return {
        "answers": n,
        "distinct_answers": len(set(seqs)),
        "distinct_share": len(set(seqs)) / n if n else 0.0,
        "distinct_1": len(set(unigrams)) / len(unigrams) if unigrams else 0.0,
        "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 0.0,
        "generic": sum(_strip(a) in phrases for a in seqs) / n if n else 0.0,
        "mean_length": len(unigrams) / n if n else 0.0,
    }

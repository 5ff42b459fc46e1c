"""The tokenizer: lower-case, words and punctuation split apart.

A token is a run of letters/digits, optionally with apostrophe parts (``can't``, ``man's`` stay one
token), or a single punctuation character. So ``"Yes, 2 cats."`` -> ``yes , 2 cats .``. This
differs from NLTK's Treebank ``word_tokenize`` (used by the authors' code) only on contractions
(``don't`` -> ``don't`` here, ``do n't`` there) and is ~20x faster (``benchmarks/prepare.py``).

Questions always end with exactly one ``?`` token: trailing ``?`` are stripped, the question is cut
to ``max_len - 1`` tokens, and ``?`` is appended (the reference code appends ``?`` to every
question; VisDial stores most questions without one).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into word and punctuation tokens."""
    return _TOKEN.findall(text.lower())


def tokenize_question(text: str, max_len: int) -> list[str]:
    """Tokens of a question, cut to ``max_len`` tokens, always ending with one ``?``."""
    tokens = tokenize(text)
    while tokens and tokens[-1] == "?":
        tokens.pop()
    return [*tokens[: max_len - 1], "?"]

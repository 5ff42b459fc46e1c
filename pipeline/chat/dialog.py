"""DialogBatches without ``dialogs.h5``: one live dialog (``visdial chat``) or a VisDial file.

Text goes through the same path as the ``prepare`` stage — ``pipeline.tokenize``, the saved
``vocab.json``, the ``prepare.max_len`` cuts — so the model sees exactly what it saw in training.
A live dialog is a batch of one dialog whose last round is the question being asked: the
caption is history fact 0 and the earlier question/answer pairs are facts 1.. (the encoders'
causal mask keeps every round to its own past, see ``pipeline/encoders/common.py``).

VisDial dialogs have at most 10 rounds, so the models never saw more than 9 earlier QA pairs.
A live dialog keeps a sliding window: the caption plus the last ``window - 1`` exchanges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from pipeline.config import MaxLen
from pipeline.data.batch import DialogBatch, batch_from_arrays, no_options
from pipeline.data.prepare import encode_split
from pipeline.data.tokenize import tokenize, tokenize_question
from pipeline.data.visdial import ROUNDS, VisDialFile
from pipeline.data.vocab import Vocabulary


def encode_text(
    text: str, vocab: Vocabulary, max_len: int, *, question: bool = False
) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` cut like ``prepare`` does, and its out-of-vocabulary words.

    Unknown words map to ``<unk>``; they are returned (in order, without repeats) for a notice.
    """
    tokens = tokenize_question(text, max_len) if question else tokenize(text)[:max_len]
    unknown = [t for t in dict.fromkeys(tokens) if t not in vocab.stoi]
    return vocab.encode(tokens), unknown


def _padded(rows: list[list[int]], width: int) -> tuple[Tensor, Tensor]:
    """Left-aligned, 0-padded ids (N, width) and lengths (N,)."""
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids, torch.tensor([len(r) for r in rows], dtype=torch.long)


@dataclass
class LiveDialog:
    """One dialog about one image, growing round by round (``visdial chat``).

    ``image`` is (K, 512) regions (channels-last pool5); ``rounds`` holds every exchange so far
    as (question ids, answer ids).
    """

    image: Tensor
    caption: list[int]
    max_len: MaxLen
    window: int = ROUNDS
    rounds: list[tuple[list[int], list[int]]] = field(default_factory=list)

    @property
    def sliding(self) -> bool:
        """Whether the oldest exchanges have left the history window."""
        return len(self.rounds) > self.window - 1

    def batch(self, question: list[int]) -> DialogBatch:
        """A batch of one dialog: caption, the last ``window - 1`` exchanges, then ``question``.

        Its last round (index R - 1) is the question to answer; its answer slot is empty.
        """
        past = self.rounds[len(self.rounds) - (self.window - 1) :] if self.window > 1 else []
        q, q_len = _padded([*(p[0] for p in past), question], self.max_len.question)  # (R, Lq)
        a, a_len = _padded([*(p[1] for p in past), []], self.max_len.answer)  # (R, La)
        c, c_len = _padded([self.caption], self.max_len.caption)  # (1, Lc)
        r = len(past) + 1
        return DialogBatch(
            image=self.image.unsqueeze(0),  # (1, K, 512)
            caption=c,
            caption_len=c_len,
            question=q.unsqueeze(0),  # (1, R, Lq)
            question_len=q_len.unsqueeze(0),  # (1, R)
            answer=a.unsqueeze(0),  # (1, R, La)
            answer_len=a_len.unsqueeze(0),  # (1, R)
            num_rounds=torch.tensor([r]),
            **no_options(1, r, self.max_len.answer),
        )

    def add(self, question: list[int], answer: list[int]) -> None:
        self.rounds.append((question, answer[: self.max_len.answer]))


def file_arrays(file: VisDialFile, vocab: Vocabulary, max_len: MaxLen) -> dict[str, np.ndarray]:
    """The ``dialogs.h5`` arrays of ``file`` (``prepare``'s own encoding), without options."""
    arrays = encode_split(file, vocab, max_len)
    for name in ("options", "has_options", "answer_pool", "answer_pool_len"):
        del arrays[name]
    return arrays


def file_batch(arrays: dict[str, np.ndarray], rows: np.ndarray, image: Tensor) -> DialogBatch:
    """Dialogs ``rows`` of ``file_arrays(...)`` with their image regions ``image`` (B, K, 512)."""
    return batch_from_arrays(arrays, rows, image)

"""The tensors of a batch of dialogs, as every model consumes them (all rounds at once).

Shapes use B = dialogs in the batch, R = rounds (10), O = options per round (100),
Lc/Lq/La = caption/question/answer lengths (24/16/8 by default). Token tensors are
left-aligned and 0-padded (``<pad>`` = 0); ``*_len`` are the real token counts (0 = absent).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor


@dataclass
class DialogBatch:
    image: Tensor  # (B, K, 512) float: VGG pool5 regions, K = 7*7 = 49 (channels-last view)
    caption: Tensor  # (B, Lc) long
    caption_len: Tensor  # (B,) long
    question: Tensor  # (B, R, Lq) long, ends with the "?" token
    question_len: Tensor  # (B, R) long
    answer: Tensor  # (B, R, La) long, ground-truth answer, no <start>/<end>
    answer_len: Tensor  # (B, R) long
    num_rounds: Tensor  # (B,) long
    options: Tensor  # (B, R, O, La) long: the candidate answers' tokens
    options_len: Tensor  # (B, R, O) long
    gt_index: Tensor  # (B, R) long, -1 where unknown (v1.0 test)

    @property
    def round_mask(self) -> Tensor:
        """(B, R) bool: rounds that exist in each dialog."""
        r = torch.arange(self.question.shape[1], device=self.question.device)
        return r.unsqueeze(0) < self.num_rounds.unsqueeze(1)  # (B, R)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> DialogBatch:
        return DialogBatch(
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                for f in fields(self)
            }
        )


def flat_rounds(batch: DialogBatch) -> Tensor:
    """(B*R,) bool: rounds that exist and have a known ground-truth answer."""
    return (batch.round_mask & (batch.answer_len > 0)).reshape(-1)



def _long(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x).astype(np.int64))


def batch_from_arrays(
    arrays: dict[str, np.ndarray],
    rows: np.ndarray,
    image: Tensor,
    options: np.ndarray | None = None,
    options_len: np.ndarray | None = None,
) -> DialogBatch:
    """Dialogs ``rows`` of arrays in the ``dialogs.h5`` layout, with their ``image`` (B, K, 512).

    ``options`` (B, R, O, La) / ``options_len`` (B, R, O) are the candidates' tokens; without
    them every round gets one empty placeholder option and ``gt_index`` -1 (generation, which
    does not rank).
    """
    b, r, la = arrays["answer"][rows].shape
    if options is None:
        candidates = no_options(b, r, la)
    else:
        candidates = {
            "options": _long(options),
            "options_len": _long(options_len),
            "gt_index": _long(arrays["gt_index"][rows]),
        }
    return DialogBatch(
        image=image,
        caption=_long(arrays["caption"][rows]),  # (B, Lc)
        caption_len=_long(arrays["caption_len"][rows]),  # (B,)
        question=_long(arrays["question"][rows]),  # (B, R, Lq)
        question_len=_long(arrays["question_len"][rows]),  # (B, R)
        answer=_long(arrays["answer"][rows]),  # (B, R, La)
        answer_len=_long(arrays["answer_len"][rows]),  # (B, R)
        num_rounds=_long(arrays["num_rounds"][rows]),  # (B,)
        **candidates,
    )


def no_options(b: int, r: int, la: int) -> dict[str, Tensor]:
    """Placeholder candidates for a batch that is only decoded: one empty option per round."""
    return {
        "options": torch.zeros(b, r, 1, la, dtype=torch.long),  # (B, R, 1, La)
        "options_len": torch.zeros(b, r, 1, dtype=torch.long),  # (B, R, 1)
        "gt_index": torch.full((b, r), -1, dtype=torch.long),  # (B, R)
    }

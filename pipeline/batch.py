"""The tensors of a batch of dialogs, as every model consumes them (all rounds at once).

Shapes use B = dialogs in the batch, R = rounds (10), O = options per round (100),
Lc/Lq/La = caption/question/answer lengths (24/16/8 by default). Token tensors are
left-aligned and 0-padded (``<pad>`` = 0); ``*_len`` are the real token counts (0 = absent).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

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

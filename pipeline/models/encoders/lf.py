"""Late Fusion (LF) encoder, the baseline of Das et al. 2017 (Visual Dialog, CVPR) §5.

Image, question and history are encoded separately and fused late: the mean-pooled embedded
image regions, the question LSTM's last state, and an LSTM over the concatenated history tokens
(caption, q_0 a_0, ..., q_{t-1} a_{t-1}) -> concat -> Linear -> tanh.

The history of round t is a prefix of the history of round t+1, so one LSTM pass over all facts
laid end to end serves every round: round t reads the state after the last token of fact t.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.data.batch import DialogBatch
from pipeline.data.vocab import PAD_ID
from pipeline.models.encoders.common import DialogEncoder, history_facts


def concatenate_facts(facts: Tensor, fact_len: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Lay the facts of each dialog end to end, without their padding.

    facts (B, F, L), fact_len (B, F) -> tokens (B, T), lengths (B,), ends (B, F) where ends[b, j]
    is the number of tokens of facts 0..j (the state after fact j sits at ends - 1).
    """
    ends = fact_len.cumsum(dim=1)  # (B, F)
    starts = ends - fact_len  # (B, F)
    total = ends[:, -1]  # (B,)
    width = int(total.max()) if total.numel() else 0
    out = facts.new_full((facts.shape[0], max(width, 1)), PAD_ID)  # (B, T)
    pos = torch.arange(facts.shape[-1], device=facts.device)  # (L,)
    valid = pos < fact_len.unsqueeze(-1)  # (B, F, L)
    b, j, p = valid.nonzero(as_tuple=True)
    out[b, starts[b, j] + p] = facts[b, j, p]
    return out, total, ends


class LateFusion(DialogEncoder):
    def __init__(
        self,
        embedding: nn.Embedding,
        hidden: int = 512,
        img_dim: int = 512,
        out_dim: int = 512,
        dropout: float = 0.5,
        image_norm: str = "none",
    ):
        super().__init__(embedding, hidden, img_dim, out_dim, dropout, image_norm)
        self.fusion = nn.Linear(3 * hidden, out_dim)

    def encode_history(self, batch: DialogBatch) -> Tensor:
        """LSTM over the concatenated history up to each round -> (B, R, H)."""
        tokens, total, ends = concatenate_facts(*history_facts(batch))
        outputs, _ = self.history_rnn.run(tokens, total)  # (B, T, H)
        idx = (ends - 1).clamp(min=0)  # (B, R)
        states = outputs.gather(1, idx.unsqueeze(-1).expand(-1, -1, self.hidden))  # (B, R, H)
        return states * (ends > 0).unsqueeze(-1)

    def forward(self, batch: DialogBatch) -> Tensor:
        fused = torch.cat(
            [self.pooled_image(batch), self.encode_question(batch), self.encode_history(batch)],
            dim=-1,
        )  # (B, R, 3H)
        return torch.tanh(self.fusion(self.dropout(fused)))

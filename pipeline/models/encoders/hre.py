"""Hierarchical Recurrent Encoder (HRE) and HRE with attention (HREA), Das et al. 2017 §5.

Per round j a recurrent block encodes the question (LSTM), the image (mean-pooled embedded
regions) and one history fact (LSTM over fact j: the caption for j = 0, the QA pair of round j-1
after); the concatenation is the input of a dialog-level LSTM running over rounds, whose state at
round t is causal by construction (it has read facts 0..t and questions 0..t). HREA replaces
fact j by an attention over facts 0..j guided by question j.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.data.batch import DialogBatch
from pipeline.models.encoders.common import AdditiveAttention, DialogEncoder


class HRE(DialogEncoder):
    attend = False

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
        if self.attend:
            self.history_attention = AdditiveAttention(hidden, hidden, hidden, dropout)
        self.dialog_rnn = nn.LSTM(3 * hidden, hidden, batch_first=True)
        self.fusion = nn.Linear(hidden, out_dim)

    def round_history(self, batch: DialogBatch, m_q: Tensor) -> Tensor:
        """The history input of each round's block (B, R, H): fact j, or attention over 0..j."""
        M_h, mask = self.encode_facts(batch)  # (B, F, H), (B, R, F)
        if not self.attend:
            return M_h  # F = R: fact j belongs to round j
        return self.history_attention(M_h, m_q, mask)[0]

    def forward(self, batch: DialogBatch) -> Tensor:
        m_q = self.encode_question(batch)  # (B, R, H)
        blocks = torch.cat([m_q, self.pooled_image(batch), self.round_history(batch, m_q)], dim=-1)
        states, _ = self.dialog_rnn(self.dropout(blocks))  # (B, R, H)
        return torch.tanh(self.fusion(self.dropout(states)))


class HREA(HRE):
    """HRE whose block at round j attends over history facts 0..j with question j as query."""

    attend = True

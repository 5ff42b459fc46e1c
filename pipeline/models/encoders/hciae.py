"""History-Conditioned Image Attentive Encoder (HCIAE), paper §4.1, Eq. 1-3, Fig. 2.

For round t (0-based here; the paper counts from 1): the question q_t goes through an LSTM to m_q;
each history fact H_0..H_t (caption, then "question answer" of earlier rounds) through another
LSTM to the columns of M_h; m_q attends over them (Eq. 1-2) to give m̂_h; [m_q, m̂_h] attends
over the 49 image regions the same way to give v̂; e_t = tanh(W_e [m_q, m̂_h, v̂]) (Eq. 3).
Every round of a batch is encoded at once: facts are encoded once per dialog and a causal mask
keeps round t to facts 0..t.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.data.batch import DialogBatch
from pipeline.models.encoders.common import AdditiveAttention, DialogEncoder


class HCIAE(DialogEncoder):
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
        self.history_attention = AdditiveAttention(hidden, hidden, hidden, dropout)
        self.image_attention = AdditiveAttention(hidden, 2 * hidden, hidden, dropout)
        self.W_e = nn.Linear(3 * hidden, out_dim)

    def attend_history(self, m_q: Tensor, M_h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. 1-2: z = w_a^T tanh(W_h M_h + (W_q m_q) 1^T), alpha = softmax(z), m̂_h = M_h alpha.

        m_q (B, R, H), M_h (B, F, H), mask (B, R, F) -> m̂_h (B, R, H), alpha (B, R, F).
        """
        return self.history_attention(M_h, m_q, mask)

    def attend_image(self, m_q: Tensor, m_h: Tensor, V: Tensor) -> tuple[Tensor, Tensor]:
        """§4.1 "in the similar manner": query [m_q, m̂_h] attends over the regions V.

        m_q, m_h (B, R, H), V (B, K, H) -> v̂ (B, R, H), alpha (B, R, K).
        """
        return self.image_attention(V, torch.cat([m_q, m_h], dim=-1))

    def fuse(self, m_q: Tensor, m_h: Tensor, v: Tensor) -> Tensor:
        """Eq. 3: e_t = tanh(W_e [m_q, m̂_h, v̂]) -> (B, R, out_dim)."""
        return torch.tanh(self.W_e(self.dropout(torch.cat([m_q, m_h, v], dim=-1))))

    def encode(self, batch: DialogBatch) -> tuple[Tensor, Tensor, Tensor]:
        """-> e (B, R, out_dim), history weights (B, R, F), image weights (B, R, K)."""
        m_q = self.encode_question(batch)  # (B, R, H)
        M_h, mask = self.encode_facts(batch)  # (B, F, H), (B, R, F)
        V = self.image_embed(batch.image)  # (B, K, H)
        m_h, alpha_h = self.attend_history(m_q, M_h, mask)
        v, alpha_v = self.attend_image(m_q, m_h, V)
        return self.fuse(m_q, m_h, v), alpha_h, alpha_v

    def forward(self, batch: DialogBatch) -> Tensor:
        return self.encode(batch)[0]

"""Memory Network (MN) encoder, Das et al. 2017 §5.

Each history fact (caption, then each earlier QA pair) is an LSTM-encoded memory. The question
of round t attends over memories 0..t with a softmax of dot products; the attention-weighted sum
of memories is added to the question encoding, and the result is fused with the mean-pooled
image through Linear -> tanh.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.data.batch import DialogBatch
from pipeline.models.encoders.common import DialogEncoder, masked_softmax


class MemoryNetwork(DialogEncoder):
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
        self.fusion = nn.Linear(2 * hidden, out_dim)

    def read_memory(self, m_q: Tensor, memories: Tensor, mask: Tensor) -> Tensor:
        """u = m_q + sum_j softmax_j(m_q . M_j) M_j over allowed facts -> (B, R, H)."""
        alpha = masked_softmax(torch.einsum("brh,bfh->brf", m_q, memories), mask)  # (B, R, F)
        return m_q + torch.einsum("brf,bfh->brh", alpha, memories)

    def forward(self, batch: DialogBatch) -> Tensor:
        m_q = self.encode_question(batch)  # (B, R, H)
        memories, mask = self.encode_facts(batch)  # (B, F, H), (B, R, F)
        u = self.read_memory(m_q, memories, mask)
        fused = torch.cat([u, self.pooled_image(batch)], dim=-1)  # (B, R, 2H)
        return torch.tanh(self.fusion(self.dropout(fused)))

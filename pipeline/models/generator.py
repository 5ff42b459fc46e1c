"""G: a dialog encoder wired to the LSTM answer decoder (paper §4.1), trained by MLE.

``forward(batch)`` returns ``(loss_sum, count)`` — the token NLL summed over the answers' tokens
and how many there were — so that the trainer can average over the *global* batch under
DistributedDataParallel; ``score_options(batch) -> (B, R, O)`` ranks the options by their summed
log-likelihood (higher = better).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pipeline.config import ModelConfig
from pipeline.data.batch import DialogBatch, flat_rounds
from pipeline.data.vocab import PAD_ID
from pipeline.models.decoder import AnswerDecoder
from pipeline.models.encoders import build_encoder
from pipeline.models.variant import Variant


@dataclass
class Attention:
    """Where each round looked: ``history`` (B, R, F) over the facts (caption, then earlier QA
    pairs; a round sees facts 0..t), ``image`` (B, R, K) over the K = 7*7 pool5 regions."""

    history: Tensor
    image: Tensor


class GenerativeModel(nn.Module):
    """Encoder + G. Trained by MLE (teacher forcing); ranks options by summed log-likelihood."""

    def __init__(self, variant: Variant, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        self.variant, self.cfg = variant, cfg
        self.embedding = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.encoder = build_encoder(
            variant.encoder, self.embedding, hidden=cfg.hidden, out_dim=cfg.hidden,
            dropout=cfg.dropout, image_norm=cfg.image_norm,
        )  # fmt: skip
        self.decoder = AnswerDecoder(self.embedding, cfg.hidden, cfg.hidden, dropout=cfg.dropout)

    def encode(self, batch: DialogBatch) -> Tensor:
        """e_t of every round, flattened: (B*R, D)."""
        return self.encoder(batch).flatten(0, 1)  # (B*R, D)

    def encode_attended(self, batch: DialogBatch) -> tuple[Tensor, Attention | None]:
        """e_t (B*R, D) and the encoder's attention weights where it has them (HCIAE, Eq. 1-2
        and its image attention), else None. Training calls ``encode``; this is for looking."""
        encode = getattr(self.encoder, "encode", None)
        if encode is None:
            return self.encode(batch), None
        e, history, image = encode(batch)  # (B, R, D), (B, R, F), (B, R, K)
        return e.flatten(0, 1), Attention(history, image)

    def mle_terms(self, e: Tensor, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        """Summed token NLL of the ground-truth answers (L_MLE numerator) and the token count."""
        answer_len = batch.answer_len.flatten()  # (B*R,)
        mask = flat_rounds(batch)
        count = ((answer_len + 1) * mask).sum()  # answer tokens + <end>
        mean = self.decoder.mle_loss(e, batch.answer.flatten(0, 1), answer_len, mask)
        return mean * count, count

    def forward(self, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        return self.mle_terms(self.encode(batch), batch)

    @torch.no_grad()
    def score_options(self, batch: DialogBatch) -> Tensor:
        b, r, o, la = batch.options.shape
        scores = self.decoder.log_prob(
            self.encode(batch),
            batch.options.reshape(b * r, o, la),  # (B*R, O, La)
            batch.options_len.reshape(b * r, o),
        )
        return scores.reshape(b, r, o)  # (B, R, O)

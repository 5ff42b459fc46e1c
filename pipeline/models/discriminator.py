"""D: a dialog encoder wired to the answer encoder f(·); score s = e_t^T f(a) (paper §4.2).

Trained by the N-pair loss (Eq. 4) or softmax cross-entropy over the ground truth and
``negatives`` sampled options. ``forward(batch)`` returns ``(loss_sum, rounds)`` (see
``pipeline.models.generator``); ``score_options(batch) -> (B, R, O)`` ranks (higher = better).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.config import ModelConfig
from pipeline.data.batch import DialogBatch, flat_rounds
from pipeline.data.vocab import PAD_ID
from pipeline.models.answer_encoder import AnswerEncoder
from pipeline.models.encoders import build_encoder
from pipeline.models.losses import negatives_from_options, npair_loss
from pipeline.models.losses import options_cross_entropy as ce_loss
from pipeline.models.variant import Variant


def unique_rows(rows: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.unique(rows, dim=0, return_inverse=True)`` for a 2-D integer tensor, by sorting.

    The same result (distinct rows in ascending lexicographic order, and each row's position
    among them), but vectorised: torch's ``unique(dim=0)`` compares rows one pair at a time on
    the CPU (80 ms for the 10 k answers of a demo batch, a third of D's training step).
    LSD radix order: stable sorts by the last column first, then by each earlier one.
    """
    n = rows.shape[0]
    order = torch.arange(n, device=rows.device)
    for col in range(rows.shape[1] - 1, -1, -1):
        order = order[torch.sort(rows[order, col], stable=True).indices]
    ordered = rows[order]  # (N, C) sorted rows
    first = torch.ones(n, dtype=torch.bool, device=rows.device)
    first[1:] = (ordered[1:] != ordered[:-1]).any(1)  # (N,) starts of runs of equal rows
    inverse = torch.empty_like(order)
    inverse[order] = torch.cumsum(first, 0) - 1
    return ordered[first], inverse


class DiscriminativeModel(nn.Module):
    """Encoder + D's answer encoder f(·); score = e_t^T f(a)."""

    def __init__(
        self, variant: Variant, vocab_size: int, cfg: ModelConfig, negatives: int = 99,
        l2: float = 0.0,
    ):  # fmt: skip
        super().__init__()
        self.variant, self.cfg, self.negatives, self.l2 = variant, cfg, negatives, l2
        self.embedding = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.encoder = build_encoder(
            variant.encoder, self.embedding, hidden=cfg.hidden, out_dim=cfg.hidden,
            dropout=cfg.dropout, image_norm=cfg.image_norm,
        )  # fmt: skip
        self.answer_encoder = AnswerEncoder(
            self.embedding, cfg.hidden, cfg.hidden, attention=variant.attention,
            dropout=cfg.dropout,
        )  # fmt: skip

    def encode(self, batch: DialogBatch) -> Tensor:
        return self.encoder(batch).flatten(0, 1)  # (B*R, D)

    def encode_answers(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """f(a) for answers (..., La) with lengths (...) -> (..., D), each distinct answer once.

        The 100 options of the rounds of a batch repeat a lot (VisDial's options are drawn from
        one answer pool; the demo has ~170 distinct answers), so the LSTM runs on the distinct
        (tokens, length) rows only, and on each length group cut to that length (answers are
        mostly much shorter than La; f ignores padding), then the result is gathered back:
        the same values for far less work.
        """
        la = tokens.shape[-1]
        rows = torch.cat([tokens.reshape(-1, la), lengths.reshape(-1, 1)], dim=1)  # (N, La+1)
        distinct, inverse = unique_rows(rows)  # (U, La+1), (N,)
        length = distinct[:, la].clamp(1, la)  # (U,)
        groups = [torch.nonzero(length == n).squeeze(1) for n in length.unique().tolist()]
        parts = [self.answer_encoder(distinct[g, : int(length[g[0]])], length[g]) for g in groups]
        order = torch.cat(groups)  # position in ``distinct`` of each row of cat(parts)
        f = torch.cat(parts)[torch.argsort(order)]  # (U, D)
        # index_select: its backward (index_add) sums the copies in a fixed order; advanced
        # indexing would accumulate them with parallel atomics, not bit-reproducible on the CPU.
        return f.index_select(0, inverse).reshape(*lengths.shape, -1)  # (..., D)

    def candidates(self, batch: DialogBatch) -> tuple[Tensor, Tensor, Tensor]:
        """The ground truth first, then ``negatives`` other options drawn at random per round.

        Returns tokens (M, 1+K, La), lengths (M, 1+K) and the option positions (M, 1+K). A drawn
        option that is the ground truth's answer as tokens (VisDial lists some twice, up to case,
        punctuation, truncation or ``<unk>``) gets length 0, like an empty option: the losses
        never use either as a negative.
        """
        b, r, o, la = batch.options.shape
        m = b * r
        gt = batch.gt_index.reshape(m).clamp_min(0)  # (M,)
        k = min(self.negatives, o - 1)
        noise = torch.rand(m, o, device=gt.device)
        noise[torch.arange(m, device=gt.device), gt] = -1.0  # never pick the ground truth
        picked = noise.topk(k, dim=1).indices if k < o - 1 else noise.argsort(1, True)[:, :k]
        positions = torch.cat([gt.unsqueeze(1), picked], dim=1)  # (M, 1+K)
        options = batch.options.reshape(m, o, la)
        tokens = options.gather(1, positions.unsqueeze(-1).expand(-1, -1, la))  # (M, 1+K, La)
        lengths = batch.options_len.reshape(m, o).gather(1, positions)  # (M, 1+K)
        same = (tokens == tokens[:, :1]).all(-1) & (lengths == lengths[:, :1])  # (M, 1+K)
        same[:, 0] = False
        return tokens, lengths.masked_fill(same, 0), positions

    def loss_terms(self, e: Tensor, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        """Summed per-round loss (N-pair Eq. 4 or option cross-entropy) and the round count."""
        mask = flat_rounds(batch) & (batch.gt_index.reshape(-1) >= 0)
        tokens, lengths, _ = self.candidates(batch)
        f = self.encode_answers(tokens, lengths)  # (M, 1+K, D)
        zeros = torch.zeros(len(e), dtype=torch.long, device=e.device)
        count = mask.sum()
        if self.variant.loss == "np":
            f_gt, f_neg, neg_mask = negatives_from_options(f, zeros, lengths)
            mean = npair_loss(e, f_gt, f_neg, neg_mask, l2=self.l2, mask=mask)
        else:
            scores = torch.einsum("md,mkd->mk", e, f)  # (M, 1+K)
            mean = ce_loss(scores, zeros, mask=mask, options_mask=lengths > 0)
        return mean * count, count

    def forward(self, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        return self.loss_terms(self.encode(batch), batch)

    @torch.no_grad()
    def score_options(self, batch: DialogBatch) -> Tensor:
        e = self.encoder(batch)  # (B, R, D)
        f = self.encode_answers(batch.options, batch.options_len)  # (B, R, O, D)
        return torch.einsum("brd,brod->bro", e, f)  # (B, R, O)

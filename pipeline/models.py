"""The trainable models: an encoder wired to G (decoder) or to D (answer encoder), by variant name.

Variant names follow the paper's tables: ``<encoder>-g[-mle]`` is a generative model trained with
MLE (``hciae-g-mle`` = HCIAE-G-MLE, ``lf-g`` = LF-G); ``<encoder>-d[-mle|-np][-att]`` is a
discriminative one, trained with softmax cross-entropy over the options (``-mle`` or nothing, the
"D-MLE" of the paper and the Das et al. baselines) or the N-pair loss (``-np``, Eq. 4), with the
self-attentive answer encoder when ``-att`` ends the name. Encoders: ``pipeline.encoders``.

Both models return ``(loss_sum, count)`` from ``forward`` — the loss summed over its units (tokens
for MLE, rounds for D) and how many there were — so that the trainer can average over the
*global* batch under DistributedDataParallel; and ``score_options(batch) -> (B, R, O)`` for
ranking (higher = better).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from pipeline.batch import DialogBatch
from pipeline.config import ModelConfig
from pipeline.discriminator import AnswerEncoder
from pipeline.encoders import ENCODERS, build_encoder
from pipeline.errors import InputError
from pipeline.generator import Generator
from pipeline.losses import negatives_from_options, npair_loss
from pipeline.losses import options_cross_entropy as ce_loss
from pipeline.vocab import PAD_ID


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "g" | "d"
    encoder: str
    loss: str  # "mle" (G), "ce" | "np" (D)
    attention: bool = False

    @classmethod
    def parse(cls, name: str) -> Variant:
        parts = name.lower().split("-")
        ok = len(parts) >= 2 and parts[0] in ENCODERS and parts[1] in ("g", "d")
        rest = parts[2:] if ok else []
        if ok and parts[1] == "g":
            ok = rest in ([], ["mle"])
            return cls(name, "g", parts[0], "mle") if ok else _bad_variant(name)
        attention = bool(rest) and rest[-1] == "att"
        rest = rest[:-1] if attention else rest
        if not ok or rest not in ([], ["mle"], ["np"]):
            _bad_variant(name)
        return cls(name, "d", parts[0], "np" if rest == ["np"] else "ce", attention)


def _bad_variant(name: str):
    encoders = "|".join(ENCODERS)
    raise InputError(
        f"unknown model variant {name!r}: expected <encoder>-g[-mle] or "
        f"<encoder>-d[-mle|-np][-att] with encoder in {encoders}"
    )


def flat_rounds(batch: DialogBatch) -> Tensor:
    """(B*R,) bool: rounds that exist and have a known ground-truth answer."""
    return (batch.round_mask & (batch.answer_len > 0)).reshape(-1)


class GenerativeModel(nn.Module):
    """Encoder + G. Trained by MLE (teacher forcing); ranks options by summed log-likelihood."""

    def __init__(self, variant: Variant, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        self.variant, self.cfg = variant, cfg
        self.embedding = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.encoder = build_encoder(
            variant.encoder, self.embedding, hidden=cfg.hidden, out_dim=cfg.hidden,
            dropout=cfg.dropout,
        )  # fmt: skip
        self.generator = Generator(self.embedding, cfg.hidden, cfg.hidden, dropout=cfg.dropout)

    def encode(self, batch: DialogBatch) -> Tensor:
        """e_t of every round, flattened: (B*R, D)."""
        return self.encoder(batch).flatten(0, 1)  # (B*R, D)

    def mle_terms(self, e: Tensor, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        """Summed token NLL of the ground-truth answers (L_MLE numerator) and the token count."""
        answer_len = batch.answer_len.flatten()  # (B*R,)
        mask = flat_rounds(batch)
        count = ((answer_len + 1) * mask).sum()  # answer tokens + <end>
        mean = self.generator.mle_loss(e, batch.answer.flatten(0, 1), answer_len, mask)
        return mean * count, count

    def forward(self, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        return self.mle_terms(self.encode(batch), batch)

    @torch.no_grad()
    def score_options(self, batch: DialogBatch) -> Tensor:
        b, r, o, la = batch.options.shape
        scores = self.generator.log_prob(
            self.encode(batch),
            batch.options.reshape(b * r, o, la),  # (B*R, O, La)
            batch.options_len.reshape(b * r, o),
        )
        return scores.reshape(b, r, o)  # (B, R, O)


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
            dropout=cfg.dropout,
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
        distinct, inverse = torch.unique(rows, dim=0, return_inverse=True)  # (U, La+1), (N,)
        length = distinct[:, la].clamp(1, la)  # (U,)
        groups = [torch.nonzero(length == n).squeeze(1) for n in length.unique().tolist()]
        parts = [self.answer_encoder(distinct[g, : int(length[g[0]])], length[g]) for g in groups]
        order = torch.cat(groups)  # position in ``distinct`` of each row of cat(parts)
        f = torch.cat(parts)[torch.argsort(order)]  # (U, D)
        return f[inverse].reshape(*lengths.shape, -1)  # (..., D)

    def candidates(self, batch: DialogBatch) -> tuple[Tensor, Tensor, Tensor]:
        """The ground truth first, then ``negatives`` other options drawn at random per round.

        Returns tokens (M, 1+K, La), lengths (M, 1+K) and the option positions (M, 1+K).
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
        return tokens, lengths, positions

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
            mean = ce_loss(scores, zeros, mask=mask)
        return mean * count, count

    def forward(self, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        return self.loss_terms(self.encode(batch), batch)

    @torch.no_grad()
    def score_options(self, batch: DialogBatch) -> Tensor:
        e = self.encoder(batch)  # (B, R, D)
        f = self.encode_answers(batch.options, batch.options_len)  # (B, R, O, D)
        return torch.einsum("brd,brod->bro", e, f)  # (B, R, O)


def build_model(
    name: str, vocab_size: int, cfg: ModelConfig, negatives: int = 99, l2: float = 0.0
) -> GenerativeModel | DiscriminativeModel:
    variant = Variant.parse(name)
    if variant.kind == "g":
        return GenerativeModel(variant, vocab_size, cfg)
    return DiscriminativeModel(variant, vocab_size, cfg, negatives=negatives, l2=l2)


def model_meta(model: GenerativeModel | DiscriminativeModel, vocab_size: int) -> dict:
    """What a checkpoint must match to be loaded into a model (plain types only).

    ``arch`` is the variant whose architecture the weights fit; ``variant`` names the trained
    model (they differ for models derived by transfer, e.g. ``hciae-g-dis`` has arch
    ``hciae-g-mle``).
    """
    name = model.variant.name
    return {"variant": name, "arch": name, "vocab_size": vocab_size, **asdict(model.cfg)}

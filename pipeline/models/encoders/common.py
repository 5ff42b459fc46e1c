"""What every dialog encoder shares: padded-sequence LSTMs, history facts, masks, attention.

All encoders produce e_t for every round t of a batch in one pass. The dialog history of round t
(0-based) is the caption plus the question-answer pairs of rounds 0..t-1. We store it as R "facts"
per dialog (paper §3: H_0 = caption, H_j = (q_j, a_j)): fact 0 is the caption, fact j >= 1 is the
tokens of question j-1 followed by those of answer j-1. Round t may look at facts 0..t only; the
QA pair of the last round is never history. ``causal_history_mask`` says which facts a round sees.

Padding never reaches a state that is read (see ``SequenceLSTM``), so trailing ``<pad>`` tokens,
or whatever a padded slot holds, cannot change a result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.data.batch import DialogBatch
from pipeline.data.vocab import PAD_ID
from pipeline.models.dropout import Dropout


class SequenceLSTM(nn.Module):
    """Single-layer LSTM over left-aligned, ``<pad>``-padded token sequences of any leading shape.

    Exact for any padding: a forward LSTM's output at position p depends on tokens 0..p only, so
    each sequence's state is read at its last real token and what follows never reaches it. Rows
    are sorted by length and run in a few buckets, each cut to its own longest sequence, which
    wastes little compute on padding and avoids the CPU packed-sequence backward (it zero-fills a
    full gradient buffer at every time step): on VisDial-like lengths at paper size, 25-35%
    faster than packing. Word embeddings get dropout (the reference code drops 50% of every
    embedded word). Rows of length 0 give an all-zero state.
    """

    def __init__(self, embedding: nn.Embedding, hidden: int, dropout: float, buckets: int = 4):
        super().__init__()
        self.embedding = embedding
        self.lstm = nn.LSTM(embedding.embedding_dim, hidden, batch_first=True)
        self.dropout = Dropout(dropout)
        self.hidden = hidden
        self.buckets = buckets

    def run(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (N, L), lengths (N,) -> outputs (N, T, H) with T = max length, last (N, H).

        ``outputs[n, p]`` is meaningful for p < lengths[n] only.
        """
        n = tokens.shape[0]
        width = int(lengths.max()) if n else 0
        if width == 0:
            zeros = tokens.new_zeros((n, 1, self.hidden), dtype=torch.float)
            return zeros, zeros[:, 0]
        order = lengths.argsort(descending=True, stable=True)  # (N,)
        outputs, lasts = [], []
        for rows in order.chunk(self.buckets):
            lens = lengths[rows]  # (n_b,)
            w = max(int(lens[0]), 1)  # sorted: the first is the longest
            out, _ = self.lstm(self.dropout(self.embedding(tokens[rows, :w])))  # (n_b, w, H)
            last_pos = (lens - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, self.hidden)
            lasts.append(out.gather(1, last_pos).squeeze(1))  # (n_b, H)
            outputs.append(F.pad(out, (0, 0, 0, width - w)))  # (n_b, T, H)
        unsort = order.argsort()  # (N,)
        last = torch.cat(lasts)[unsort] * (lengths > 0).unsqueeze(-1)  # (N, H)
        return torch.cat(outputs)[unsort], last  # (N, T, H), (N, H)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (..., L), lengths (...) -> last hidden state (..., H)."""
        lead = lengths.shape
        flat = tokens.reshape(-1, tokens.shape[-1])  # (N, L)
        _, last = self.run(flat, lengths.reshape(-1))
        return last.reshape(*lead, self.hidden)  # (..., H)


class RegionEmbedding(nn.Module):
    """Image regions V (B, K, img_dim) -> tanh(Linear(V)) (B, K, H), as the reference code does.

    ``image_norm="l2"`` first scales each region's vector to unit L2 norm (the VisDial anchors'
    ``img_norm``): the region's direction, not its magnitude, reaches the embedding.
    ``"zscore"`` standardises each channel with the train split's statistics (buffers ``mean``
    and ``std``, set by :meth:`set_stats` before training and saved with the weights): features
    of a random VGG-19 share one large common component (same-cell regions of two demo images:
    cosine 0.9), which this removes.
    """

    def __init__(self, img_dim: int, hidden: int, image_norm: str = "none"):
        super().__init__()
        self.linear = nn.Linear(img_dim, hidden)
        self.image_norm = image_norm
        if image_norm == "zscore":
            self.register_buffer("mean", torch.zeros(img_dim))
            self.register_buffer("std", torch.ones(img_dim))

    def set_stats(self, mean, std, eps: float = 1e-6) -> None:
        """The per-channel train statistics (img_dim,) that ``zscore`` standardises with."""
        self.mean.copy_(torch.as_tensor(mean))
        self.std.copy_(torch.as_tensor(std).clamp_min(eps))

    def forward(self, image: Tensor) -> Tensor:
        if self.image_norm == "l2":
            image = F.normalize(image, p=2.0, dim=-1)  # (B, K, img_dim), unit rows
        elif self.image_norm == "zscore":
            image = (image - self.mean) / self.std  # (B, K, img_dim)
        return torch.tanh(self.linear(image))


def qa_pairs(question: Tensor, question_len: Tensor, answer: Tensor, answer_len: Tensor):
    """Per round, the tokens "question answer" left-aligned: (B, R, Lq+La) tokens, (B, R) lengths.

    Vectorized concatenation of two padded sequences: position p takes ``question[p]`` while
    p < question_len, then ``answer[p - question_len]``, then ``<pad>``.
    """
    lq = question.shape[-1]
    qa = torch.cat([question, answer], dim=-1)  # (B, R, Lq + La)
    pos = torch.arange(qa.shape[-1], device=qa.device)  # (L,)
    ql = question_len.unsqueeze(-1)  # (B, R, 1)
    total = question_len + answer_len  # (B, R)
    src = torch.where(pos < ql, pos, lq + pos - ql).clamp(0, qa.shape[-1] - 1)  # (B, R, L)
    valid = pos < total.unsqueeze(-1)  # (B, R, L)
    return qa.gather(-1, src).masked_fill(~valid, PAD_ID), total


def history_facts(batch: DialogBatch) -> tuple[Tensor, Tensor]:
    """The R history facts of each dialog: tokens (B, R, Lh) and lengths (B, R).

    Fact 0 = caption (paper's H_0); fact j = question j-1 + answer j-1 (H_j, 1-based rounds).
    """
    qa, qa_len = qa_pairs(batch.question, batch.question_len, batch.answer, batch.answer_len)
    width = max(batch.caption.shape[-1], qa.shape[-1])
    caption = F.pad(batch.caption, (0, width - batch.caption.shape[-1]), value=PAD_ID)  # (B, Lh)
    qa = F.pad(qa, (0, width - qa.shape[-1]), value=PAD_ID)  # (B, R, Lh)
    facts = torch.cat([caption.unsqueeze(1), qa[:, :-1]], dim=1)  # (B, R, Lh)
    lengths = torch.cat([batch.caption_len.unsqueeze(1), qa_len[:, :-1]], dim=1)  # (B, R)
    return facts, lengths


def causal_history_mask(fact_len: Tensor) -> Tensor:
    """(B, R, F) bool: round t may attend to fact j iff j <= t and fact j exists.

    Fact 0 (the caption) is always allowed, so no row is empty and softmax never sees only -inf.
    """
    n_rounds = fact_len.shape[1]
    r = torch.arange(n_rounds, device=fact_len.device)
    causal = r.unsqueeze(1) >= r.unsqueeze(0)  # (R, F): j <= t
    exists = (fact_len > 0) | (r == 0)  # (B, F)
    return causal.unsqueeze(0) & exists.unsqueeze(1)  # (B, R, F)


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last dim, giving weight 0 where ``mask`` is False."""
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


class AdditiveAttention(nn.Module):
    """Query-guided attention over a set of keys (paper Eq. 1-2, and "in the similar manner").

    z = w_a^T tanh(W_k K + (W_q q) 1^T) ;  alpha = softmax(z) ;  attended = K alpha.

    Keys (B, N, Dk) are shared by the R queries (B, R, Dq) of a dialog, so every round attends in
    one broadcast. W_q carries the one bias inside tanh (the reference's two Linear biases sum to
    one); w_a has none (a constant shift cancels in softmax). Dropout acts on the tanh features,
    as in the reference code.
    """

    def __init__(self, key_dim: int, query_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.W_k = nn.Linear(key_dim, hidden, bias=False)
        self.W_q = nn.Linear(query_dim, hidden)
        self.w_a = nn.Linear(hidden, 1, bias=False)
        self.dropout = Dropout(dropout)

    def scores(self, keys: Tensor, query: Tensor) -> Tensor:
        """keys (B, N, Dk), query (B, R, Dq) -> z (B, R, N) (Eq. 1)."""
        k = self.W_k(keys).unsqueeze(1)  # (B, 1, N, H)
        q = self.W_q(query).unsqueeze(2)  # (B, R, 1, H)
        return self.w_a(self.dropout(torch.tanh(k + q))).squeeze(-1)  # (B, R, N)

    def forward(self, keys: Tensor, query: Tensor, mask: Tensor | None = None):
        """-> attended keys (B, R, Dk) and weights alpha (B, R, N) (Eq. 2)."""
        alpha = masked_softmax(self.scores(keys, query), mask)  # (B, R, N)
        return torch.einsum("brn,bnd->brd", alpha, keys), alpha


class DialogEncoder(nn.Module):
    """Base of every encoder: a question LSTM, a history LSTM, region embeddings, dropout.

    Subclasses implement ``forward(batch) -> (B, R, out_dim)``. The word embedding is owned by
    the model and shared with the decoder / answer encoder.
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        hidden: int = 512,
        img_dim: int = 512,
        out_dim: int = 512,
        dropout: float = 0.5,
        image_norm: str = "none",
    ):
        super().__init__()
        self.embedding = embedding
        self.hidden = hidden
        self.out_dim = out_dim
        self.question_rnn = SequenceLSTM(embedding, hidden, dropout)
        self.history_rnn = SequenceLSTM(embedding, hidden, dropout)
        self.image_embed = RegionEmbedding(img_dim, hidden, image_norm)
        self.dropout = Dropout(dropout)

    def encode_question(self, batch: DialogBatch) -> Tensor:
        """m_q: last LSTM state of each round's question (B, R, H)."""
        return self.question_rnn(batch.question, batch.question_len)

    def encode_facts(self, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        """M_h: each history fact through the history LSTM (B, R, H), and the (B, R, F) mask."""
        facts, fact_len = history_facts(batch)
        return self.history_rnn(facts, fact_len), causal_history_mask(fact_len)

    def pooled_image(self, batch: DialogBatch) -> Tensor:
        """Mean of the embedded regions, repeated for every round (B, R, H)."""
        pooled = self.image_embed(batch.image).mean(dim=1)  # (B, H)
        return pooled.unsqueeze(1).expand(-1, batch.question.shape[1], -1)  # (B, R, H)

"""D's answer encoder f(·) and its score s = e_t^T f(a) (paper §4.2, variants -NP and -NP-ATT).

f(a): the answer's word embeddings (the 300-d table shared with the encoder and G) -> LSTM (512)
-> pooled over time -> tanh(Linear) to the encoder's output size D. Pooling:

* ``attention=True`` (ATT): a 1-layer-MLP self-attention over the time steps,
  alpha = softmax_t(w^T tanh(W h_t)), masked to the real tokens, pooled = sum_t alpha_t h_t;
* ``attention=False``: the LSTM state at the last real token.

Answers are token ids (..., T) with lengths (...), or one-hot / soft distributions (..., T, V)
(G's Gumbel samples): those are embedded as ``a @ embedding.weight`` so gradients reach G.
An empty answer (length 0) is read as its first (padding) token, so it still gets a finite f.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.models.dropout import Dropout
from pipeline.models.gumbel import embed_one_hot


class AnswerEncoder(nn.Module):
    """f(·) of the discriminator D; ``score`` ranks candidate answers for an encoding e."""

    def __init__(
        self,
        embedding: nn.Embedding,
        out_dim: int,
        hidden: int = 512,
        attention: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embedding = embedding
        self.lstm = nn.LSTM(embedding.embedding_dim, hidden, batch_first=True)
        self.attention = attention
        if attention:
            self.att_hidden = nn.Linear(hidden, hidden)
            self.att_score = nn.Linear(hidden, 1)
        self.dropout = Dropout(dropout)
        self.proj = nn.Linear(hidden, out_dim)

    def embed(self, answers: Tensor) -> Tensor:
        """Ids (N, T) or one-hot/soft (N, T, V) -> embeddings (N, T, E)."""
        if answers.is_floating_point():
            return embed_one_hot(answers, self.embedding.weight)  # (N, T, E) = answers @ W
        return self.embedding(answers)

    def attention_weights(self, states: Tensor, lengths: Tensor) -> Tensor:
        """(N, T, H) LSTM outputs -> (N, T) softmax weights, zero past each answer's length."""
        logits = self.att_score(self.dropout(torch.tanh(self.att_hidden(states)))).squeeze(-1)
        steps = torch.arange(states.shape[1], device=states.device).unsqueeze(0)  # (1, T)
        logits = logits.masked_fill(steps >= lengths.unsqueeze(1), float("-inf"))  # (N, T)
        return torch.softmax(logits, dim=-1)

    def forward(self, answers: Tensor, lengths: Tensor) -> Tensor:
        """f(a): answers (..., T) ids or (..., T, V) floats, lengths (...) -> (..., out_dim)."""
        lead = lengths.shape
        t = answers.shape[len(lead)]
        tail = answers.shape[len(lead) + 1 :]
        flat = answers.reshape(-1, t, *tail)  # (N, T) or (N, T, V)
        flat_len = lengths.reshape(-1).clamp(1, t)  # (N,)
        states, _ = self.lstm(self.dropout(self.embed(flat)))  # (N, T, H)
        if self.attention:
            alpha = self.attention_weights(states, flat_len)  # (N, T)
            pooled = torch.einsum("nt,nth->nh", alpha, states)  # (N, H)
        else:
            # The LSTM is causal, so the output at the last real token ignores the padding.
            last = (flat_len - 1).view(-1, 1, 1).expand(-1, 1, states.shape[-1])  # (N, 1, H)
            pooled = states.gather(1, last).squeeze(1)  # (N, H)
        f = torch.tanh(self.proj(self.dropout(pooled)))  # (N, out_dim)
        return f.reshape(*lead, -1)  # (..., out_dim)

    def score(self, e: Tensor, answers: Tensor, lengths: Tensor) -> Tensor:
        """s = e^T f(a). e (M, D); answers (M, T[, V]) -> (M,) or (M, O, T[, V]) -> (M, O).

        All M * O options are encoded in one LSTM call."""
        f = self(answers, lengths)  # (M, D) or (M, O, D)
        if f.dim() == 2:
            return (e * f).sum(-1)
        return torch.einsum("md,mod->mo", e, f)

"""G's answer decoder: a single-layer LSTM conditioned on the encoding e_t (§4, §5).

Works on flattened rounds: e (M, D) with M = B * R, answers (M, La) left-aligned and 0-padded
without ``<start>``/``<end>`` (``DialogBatch.answer`` reshaped). Teacher forcing reads
``<start> a_1 .. a_L`` and predicts ``a_1 .. a_L <end>``, so logits have La + 1 steps.

Conditioning: e_t sets the LSTM's initial state, h_0 = tanh(W_h e_t), c_0 = W_c e_t, and is fed
beside the word embedding (the 300-d table shared with the encoder and D) at every step. The
authors' code instead starts from the question LSTM's state and feeds e_t as the first input;
our encoders expose only e_t. With e_t in the initial state alone, G learned to ignore it on the
demo (see ``AnswerDecoder._lstm``). Teacher forcing, every decoder and the Gumbel rollout share one
step function whose first input is always ``<start>``.

Decoders (``greedy``, ``sample``, ``beam_search``, ``gumbel_rollout``) never emit ``<pad>`` or
``<start>`` and return answers in the dataset format: ids (M, max_len) without ``<end>``,
0-padded, and lengths (M,) = tokens before the first ``<end>`` (max_len if none was emitted), so
they can be fed straight to ``log_prob`` or D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pipeline.data.vocab import END_ID, PAD_ID, START_ID
from pipeline.errors import InputError
from pipeline.models.dropout import Dropout
from pipeline.models.gumbel import embed_one_hot, gumbel_softmax_st
from pipeline.models.losses import masked_token_nll, sequence_log_prob

State = tuple[Tensor, Tensor, Tensor]  # (h (1, M, H), c (1, M, H), e (M, D))


def teacher_forcing(answer: Tensor, answer_len: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Inputs ``<start> a``, targets ``a <end>`` and the target mask, each (N, La + 1).

    answer (N, La) long, answer_len (N,) long. Tokens at or past ``answer_len`` are ignored.
    """
    n, la = answer.shape
    steps = torch.arange(la + 1, device=answer.device).unsqueeze(0)  # (1, La + 1)
    lengths = answer_len.clamp(0, la).unsqueeze(1)  # (N, 1)
    padded = torch.cat([answer, answer.new_zeros(n, 1)], dim=1)  # (N, La + 1)
    padded = padded.masked_fill(steps >= lengths, PAD_ID)
    inputs = torch.cat([answer.new_full((n, 1), START_ID), padded[:, :-1]], dim=1)  # (N, La + 1)
    targets = padded.masked_fill(steps == lengths, END_ID)
    return inputs, targets, steps <= lengths


def lengths_until_end(tokens: Tensor) -> Tensor:
    """(N, T) ids -> (N,) number of tokens before the first ``<end>`` (T if there is none)."""
    is_end = tokens == END_ID
    first = is_end.int().argmax(dim=1)  # first True, or 0 if none
    return torch.where(is_end.any(dim=1), first, torch.full_like(first, tokens.shape[1]))


class AnswerDecoder(nn.Module):
    """G's LSTM decoder over the shared word embedding; initial state from e_t and e_t beside
    every input word; linear to vocab."""

    def __init__(
        self, embedding: nn.Embedding, enc_dim: int, hidden: int = 512, dropout: float = 0.0
    ):
        super().__init__()
        self.embedding = embedding
        self.vocab_size = embedding.num_embeddings
        self.init_h = nn.Linear(enc_dim, hidden)
        self.init_c = nn.Linear(enc_dim, hidden)
        self.lstm = nn.LSTM(embedding.embedding_dim + enc_dim, hidden, batch_first=True)
        self.dropout = Dropout(dropout)
        self.out = nn.Linear(hidden, self.vocab_size)

    # ---- building blocks -------------------------------------------------------------------
    def init_state(self, e: Tensor) -> State:
        """(M, D) -> (h_0, c_0, e): h_0, c_0 (1, M, H) from e; e rides along as the context."""
        return torch.tanh(self.init_h(e)).unsqueeze(0), self.init_c(e).unsqueeze(0), e

    def _lstm(self, inputs_emb: Tensor, state: State) -> tuple[Tensor, State]:
        """The decoder LSTM; its input at every step is [word embedding, e_t].

        Feeding e_t at every step (not only into the initial state) keeps G conditioned: with
        e_t in the initial state alone, MLE training on the demo drove the encoder's tanh into
        saturation (a constant e_t acting as a bias) and G answered every question the same.
        """
        h, c, e = state
        ctx = e.unsqueeze(1).expand(-1, inputs_emb.shape[1], -1)  # (M, T, D)
        out, (h, c) = self.lstm(torch.cat([self.dropout(inputs_emb), ctx], -1), (h, c))
        return out, (h, c, e)  # out (M, T, H)

    def _real_token_logits(self, e: Tensor, inputs: Tensor, token_mask: Tensor) -> Tensor:
        """Teacher-forced logits (K, V) at the K True positions of ``token_mask`` (N, T) only.

        ``token_mask`` rows are prefixes (answer + ``<end>``), so rows are run in groups of
        equal length, each cut to that length: the LSTM skips the padding (answers are mostly
        far shorter than ``La``) and the outputs are exactly those of one padded call.
        """
        steps = token_mask.sum(1)  # (N,)
        positions = torch.arange(token_mask.shape[1], device=steps.device).unsqueeze(0)
        if not torch.equal(token_mask, positions < steps.unsqueeze(1)):  # not prefixes
            out, _ = self._lstm(self.embedding(inputs), self.init_state(e))  # (N, T, H)
            return self.out(self.dropout(out[token_mask]))  # (K, V)
        start = torch.cumsum(steps, 0) - steps  # (N,) first flat position of each row
        outs, where = [], []
        for n in steps.unique().tolist():
            if n == 0:
                continue
            rows = torch.nonzero(steps == n).squeeze(1)
            out, _ = self._lstm(self.embedding(inputs[rows, :n]), self.init_state(e[rows]))
            outs.append(out.reshape(-1, out.shape[-1]))  # (G*n, H)
            where.append((start[rows].unsqueeze(1) + positions[:, :n]).reshape(-1))  # (G*n,)
        if not outs:
            return self.out(e.new_zeros(0, self.lstm.hidden_size))  # (0, V)
        out = torch.cat(outs)[torch.argsort(torch.cat(where))]  # (K, H) in token_mask order
        return self.out(self.dropout(out))  # (K, V)

    def _logits(self, inputs_emb: Tensor, state: State) -> tuple[Tensor, State]:
        """Embedded inputs (M, T, E) -> logits (M, T, V) and the final state."""
        out, state = self._lstm(inputs_emb, state)  # (M, T, H)
        return self.out(self.dropout(out)), state

    def _step(self, inputs_emb: Tensor, state: State, forbid: bool = True) -> tuple[Tensor, State]:
        """One step: (M, E) -> next-token logits (M, V), ``<pad>``/``<start>`` at -inf."""
        logits, state = self._logits(inputs_emb.unsqueeze(1), state)  # (M, 1, V)
        logits = logits.squeeze(1)  # (M, V)
        return (self._forbid(logits) if forbid else logits), state

    @staticmethod
    def _forbid(logits: Tensor) -> Tensor:
        forbidden = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        forbidden[[PAD_ID, START_ID]] = True
        return logits.masked_fill(forbidden, float("-inf"))

    # ---- teacher forcing -------------------------------------------------------------------
    def forward(self, e: Tensor, tokens_in: Tensor) -> Tensor:
        """Teacher-forced logits (M, T, V) for inputs (M, T) (``<start>``-prefixed, see
        :func:`teacher_forcing`); step t predicts the token after ``tokens_in[:, t]``."""
        logits, _ = self._logits(self.embedding(tokens_in), self.init_state(e))
        return logits

    def mle_loss(
        self, e: Tensor, answer: Tensor, answer_len: Tensor, mask: Tensor | None = None
    ) -> Tensor:
        """L_MLE: mean token NLL of ``a_1 .. a_L <end>`` over the rounds with ``mask`` True."""
        inputs, targets, token_mask = teacher_forcing(answer, answer_len)
        if mask is not None:
            token_mask = token_mask & mask.unsqueeze(1)
        return masked_token_nll(self._real_token_logits(e, inputs, token_mask), targets, token_mask)

    def log_prob(
        self, e: Tensor, options: Tensor, options_len: Tensor, chunk: int | None = None
    ) -> Tensor:
        """Summed log-likelihood (incl. ``<end>``) of every option: (M, D), (M, O, La) -> (M, O).

        Tokens at or past an option's length are ignored. In eval mode (or without dropout) the
        options of each round are walked as a prefix tree (:meth:`_prefix_tree_log_prob`);
        training-mode dropout needs one mask per sequence, so there all M * O sequences go
        through the LSTM as teacher forcing does (:meth:`_sequence_log_prob`). ``chunk`` bounds
        the rows of logits held at once (default: 2**22 // V, ~16 MB of float32).
        """
        chunk = chunk or max(1, 2**22 // self.vocab_size)
        if self.training and self.dropout.p > 0:
            return self._sequence_log_prob(e, options, options_len, chunk)
        return self._prefix_tree_log_prob(e, options, options_len, chunk)

    def _sequence_log_prob(self, e: Tensor, options: Tensor, options_len: Tensor, chunk: int):
        """:meth:`log_prob` by teacher forcing every sequence, ``chunk`` sequences at a time."""
        m, o, la = options.shape
        e_rep = e.unsqueeze(1).expand(m, o, e.shape[-1]).reshape(m * o, -1)  # (M*O, D)
        flat = options.reshape(m * o, la)  # (M*O, La)
        flat_len = options_len.reshape(m * o)  # (M*O,)
        out = []
        for start in range(0, m * o, chunk):
            sl = slice(start, start + chunk)
            inputs, targets, token_mask = teacher_forcing(flat[sl], flat_len[sl])
            logits = self._real_token_logits(e_rep[sl], inputs, token_mask)  # (K, V)
            out.append(sequence_log_prob(logits, targets, token_mask))
        return torch.cat(out).reshape(m, o)  # (M, O)

    def _prefix_tree_log_prob(self, e: Tensor, options: Tensor, options_len: Tensor, chunk: int):
        """:meth:`log_prob` stepping each distinct (round, prefix) once.

        The LSTM state after ``<start> a_1 .. a_t`` depends only on the round and the prefix,
        and a round's options share prefixes ("yes ...", "no ...", "it's ..."): a node of depth
        t is a distinct (round, a_1 .. a_t); its children are stepped from its state. The input
        projection of [word, e_t] is split: e_t's part is computed once per round, each word's
        once per vocabulary entry. The demo's options have 2.3x fewer nodes than tokens; the
        numbers are teacher forcing's up to float rounding (tested).
        """
        m, o, la = options.shape
        vocab = self.vocab_size
        n_embed = self.embedding.embedding_dim
        w_ih, w_hh = self.lstm.weight_ih_l0, self.lstm.weight_hh_l0  # (4H, E + D), (4H, H)
        bias = self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0  # (4H,)
        ctx_gates = torch.addmm(bias, e, w_ih[:, n_embed:].t())  # (M, 4H) e_t's part, per round
        word_gates = self.embedding.weight @ w_ih[:, :n_embed].t()  # (V, 4H) each word's part
        tokens = options.reshape(m * o, la)  # (M*O, La)
        lengths = options_len.reshape(m * o).clamp(0, la)  # (M*O,)
        h, c, _ = self.init_state(e)
        h, c = h[0].float(), c[0].float()  # (N, H) node states (float32 under autocast too)
        node_round = torch.arange(m, device=e.device)  # (N,)
        node_of = torch.arange(m, device=e.device).repeat_interleave(o)  # (M*O,) row -> node
        token = torch.full((m,), START_ID, dtype=torch.long, device=e.device)  # (N,) input
        score = e.new_zeros(m * o, dtype=torch.float32)
        rows = torch.arange(m * o, device=e.device)  # the options still going at depth t
        for t in range(la + 1):
            gates = torch.addmm(ctx_gates[node_round] + word_gates[token], h, w_hh.t()).float()
            i, f, g, out_gate = gates.chunk(4, dim=1)  # (N, H) each: PyTorch's gate order
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(out_gate) * torch.tanh(c)  # (N, H) after <start> a_1 .. a_t
            going = lengths[rows] > t  # (K,) has a token a_{t+1}; else its target is <end>
            nxt = tokens[rows, min(t, la - 1)] if la else lengths[rows]  # a_{t+1} (when going)
            target = torch.where(going, nxt, torch.full_like(nxt, END_ID))  # (K,)
            score[rows] += self._picked_log_probs(h, node_of[rows], target, chunk)
            rows, nxt = rows[going], nxt[going]
            if rows.numel() == 0:
                break
            key = node_of[rows] * vocab + nxt  # (K',) a child: (parent node, token)
            children, node_of[rows] = torch.unique(key, return_inverse=True)
            parent, token = children // vocab, children % vocab  # (N',)
            h, c, node_round = h[parent], c[parent], node_round[parent]
        return score.reshape(m, o)  # (M, O)

    def _picked_log_probs(self, h: Tensor, node: Tensor, target: Tensor, chunk: int) -> Tensor:
        """log p(target | node) for (K,) pairs of node index into h (N, H) and token, the
        float32 log-softmax over the vocabulary taken ``chunk`` nodes at a time."""
        picked = h.new_empty(node.shape[0], dtype=torch.float32)
        for start in range(0, h.shape[0], chunk):
            log_p = torch.log_softmax(self.out(h[start : start + chunk]).float(), dim=-1)
            here = (node >= start) & (node < start + chunk)  # (K,)
            picked[here] = log_p[node[here] - start, target[here]]
        return picked

    # ---- decoding --------------------------------------------------------------------------
    def _decode(self, e: Tensor, max_len: int, choose) -> tuple[Tensor, Tensor]:
        m = e.shape[0]
        state = self.init_state(e)
        token = e.new_full((m,), START_ID, dtype=torch.long)
        tokens = e.new_full((m, max_len), PAD_ID, dtype=torch.long)
        done = torch.zeros(m, dtype=torch.bool, device=e.device)
        for t in range(max_len):
            logits, state = self._step(self.embedding(token), state)
            token = choose(logits).masked_fill(done, END_ID)
            tokens[:, t] = token
            done = done | (token == END_ID)
            if bool(done.all()):
                break
        return self._finish(tokens)

    @staticmethod
    def _finish(tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Ids with ``<end>`` and what follows it replaced by ``<pad>``, and their lengths."""
        lengths = lengths_until_end(tokens)
        steps = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        return tokens.masked_fill(steps >= lengths.unsqueeze(1), PAD_ID), lengths

    @torch.no_grad()
    def greedy(self, e: Tensor, max_len: int = 8) -> tuple[Tensor, Tensor]:
        """Argmax decoding: ids (M, max_len), lengths (M,)."""
        return self._decode(e, max_len, lambda logits: logits.argmax(-1))

    @torch.no_grad()
    def sample(
        self,
        e: Tensor,
        temperature: float = 1.0,
        max_len: int = 8,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Ancestral sampling from softmax(logits / temperature): ids (M, max_len), lengths."""

        def choose(logits: Tensor) -> Tensor:
            probs = torch.softmax(logits / temperature, dim=-1)
            return torch.multinomial(probs, 1, generator=generator).squeeze(1)

        return self._decode(e, max_len, choose)

    @torch.no_grad()
    def beam_search(self, e: Tensor, beam_size: int = 5, max_len: int = 8) -> tuple[Tensor, Tensor]:
        """Batched beam search; returns the beam with the highest summed log-probability
        (incl. ``<end>``, the score ``log_prob`` ranks by): ids (M, max_len), lengths (M,).

        Finished beams stay in the beam with a frozen score (they may only extend with
        ``<pad>`` at no cost); at step ``max_len`` every open beam is forced to ``<end>``.
        """
        m, k, v = e.shape[0], beam_size, self.vocab_size
        h, c, _ = self.init_state(e)
        state = (h.repeat_interleave(k, 1), c.repeat_interleave(k, 1), e.repeat_interleave(k, 0))
        token = e.new_full((m * k,), START_ID, dtype=torch.long)
        scores = e.new_full((m, k), float("-inf"))
        scores[:, 0] = 0.0  # one live beam at the start, so the K beams are distinct
        seqs = e.new_zeros((m, k, 0), dtype=torch.long)
        finished = torch.zeros(m, k, dtype=torch.bool, device=e.device)
        only_pad = torch.full((v,), float("-inf"), device=e.device)
        only_pad[PAD_ID] = 0.0
        only_end = torch.full((v,), float("-inf"), device=e.device)
        only_end[END_ID] = 0.0
        rows = torch.arange(m, device=e.device).unsqueeze(1) * k  # (M, 1)
        for t in range(max_len + 1):
            logits, state = self._step(self.embedding(token), state, forbid=False)
            # Normalise before forbidding <pad>/<start>, so beam scores are log_prob's scores.
            log_p = self._forbid(torch.log_softmax(logits.float(), -1)).reshape(m, k, v)
            if t == max_len:
                log_p = log_p + only_end
            log_p = torch.where(finished.unsqueeze(-1), only_pad, log_p)
            cand = (scores.unsqueeze(-1) + log_p).reshape(m, k * v)  # (M, K*V)
            scores, index = cand.topk(k, dim=1)  # (M, K)
            beam, token2 = index // v, index % v
            seqs = torch.cat(
                [seqs.gather(1, beam.unsqueeze(-1).expand_as(seqs)), token2[..., None]], 2
            )
            finished = finished.gather(1, beam) | (token2 == END_ID)
            flat = (rows + beam).reshape(-1)  # (M*K,) source beam of every new beam
            state = (state[0][:, flat], state[1][:, flat], state[2][flat])
            token = token2.reshape(-1)
            if bool(finished.all()):
                break
        best = scores.argmax(dim=1)  # (M,)
        tokens = seqs[torch.arange(m, device=e.device), best]  # (M, steps)
        tokens = torch.cat([tokens, tokens.new_zeros(m, max_len + 1 - tokens.shape[1])], 1)
        return self._finish(tokens[:, :max_len])

    # ---- knowledge transfer ----------------------------------------------------------------
    def gumbel_rollout(
        self, e: Tensor, tau: float, max_len: int = 8, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Differentiable sampling for L_G (§4.3): straight-through one-hots (M, max_len, V).

        At every step a token is drawn with :func:`gumbel_softmax_st` (Eq. 6) and its one-hot is
        fed back as ``one_hot @ embedding.weight`` (= the token's embedding forward, the relaxed
        sample's gradient backward), so gradients from D reach all earlier steps. The one-hot at
        the first sampled ``<end>`` and everything after it are zeroed: like the dataset's
        answers, the returned answer has no ``<end>``, and ``lengths`` (M,) counts its tokens.
        Gumbel noise is drawn as one (M, V) tensor per step from ``generator``.
        """
        m = e.shape[0]
        state = self.init_state(e)
        weight = self.embedding.weight  # (V, E)
        inputs = self.embedding(e.new_full((m,), START_ID, dtype=torch.long))  # (M, E)
        done = torch.zeros(m, dtype=torch.bool, device=e.device)
        one_hots = []
        for _ in range(max_len):
            logits, state = self._step(inputs, state)
            y = gumbel_softmax_st(logits, tau, generator=generator)  # (M, V)
            one_hots.append(y)
            done = done | (y.detach()[:, END_ID] > 0)
            if bool(done.all()):  # every answer has ended: the remaining steps would be zeroed
                break
            inputs = embed_one_hot(y, weight)  # (M, E) = y @ weight
        one_hot = torch.stack(one_hots, dim=1)  # (M, T', V), T' <= max_len
        lengths = lengths_until_end(one_hot.detach().argmax(-1))
        steps = torch.arange(one_hot.shape[1], device=e.device).unsqueeze(0)
        keep = (steps < lengths.unsqueeze(1)).unsqueeze(-1).to(one_hot.dtype)  # (M, T', 1)
        one_hot = one_hot * keep
        pad = one_hot.new_zeros(m, max_len - one_hot.shape[1], one_hot.shape[2])
        return torch.cat([one_hot, pad], dim=1), lengths  # (M, max_len, V)


# ---- decoding settings -----------------------------------------------------------------------
DECODERS = ("greedy", "sample", "beam")


@dataclass(frozen=True)
class Decoding:
    method: str = "greedy"  # greedy | sample | beam
    temperature: float = 1.0
    beam_size: int = 5
    max_len: int = 8  # prepare.max_len.answer: G never saw longer answers
    seed: int = 0

    def __post_init__(self):
        if self.method not in DECODERS:
            raise InputError(f"chat.decode: {self.method!r}: expected {' | '.join(DECODERS)}")
        if not self.temperature > 0:
            raise InputError(f"chat.temperature: {self.temperature}: must be > 0")
        if self.beam_size < 1:
            raise InputError(f"chat.beam_size: {self.beam_size}: must be >= 1")

    def __str__(self) -> str:
        extra = {"sample": f" (temperature {self.temperature}, seed {self.seed})",
                 "beam": f" (beam size {self.beam_size})"}  # fmt: skip
        return self.method + extra.get(self.method, "")


def generate(
    g: AnswerDecoder, e: Tensor, decoding: Decoding, rng: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """G's answers for encodings e (M, D): ids (M, max_len) without ``<end>``, lengths (M,).

    The one place every consumer of G's answers decodes through (``visdial chat`` / ``answer``,
    the report's samples). ``rng`` feeds ``sample`` (seeded -> reproducible); greedy and beam
    search draw nothing.
    """
    if decoding.method == "sample":
        return g.sample(e, decoding.temperature, decoding.max_len, generator=rng)
    if decoding.method == "beam":
        return g.beam_search(e, decoding.beam_size, decoding.max_len)
    return g.greedy(e, decoding.max_len)

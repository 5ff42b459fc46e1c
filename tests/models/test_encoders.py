"""Dialog encoders: shapes, causality, padding invariance, HCIAE Eq. 1-3 against a direct loop."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from pipeline.data.batch import DialogBatch
from pipeline.data.vocab import PAD_ID
from pipeline.errors import InputError
from pipeline.models.encoders import ENCODERS, HCIAE, LateFusion, MemoryNetwork, build_encoder
from pipeline.models.encoders.common import (
    SequenceLSTM,
    causal_history_mask,
    history_facts,
    qa_pairs,
)

VOCAB, EMB, HIDDEN, IMG, OUT = 30, 7, 16, 12, 10
B, R, K, LC, LQ, LA = 3, 5, 49, 6, 5, 4
NAMES = sorted(ENCODERS)


def _tokens(g: torch.Generator, shape: tuple[int, ...], lengths: torch.Tensor) -> torch.Tensor:
    t = torch.randint(4, VOCAB, shape, generator=g)
    return t.masked_fill(torch.arange(shape[-1]) >= lengths.unsqueeze(-1), PAD_ID)


def make_batch(seed: int = 0, num_rounds: tuple[int, ...] = (R, 3, 1)) -> DialogBatch:
    g = torch.Generator().manual_seed(seed)
    nr = torch.tensor(num_rounds)
    present = torch.arange(R).unsqueeze(0) < nr.unsqueeze(1)  # (B, R)
    caption_len = torch.randint(1, LC + 1, (B,), generator=g)
    question_len = torch.randint(1, LQ + 1, (B, R), generator=g) * present
    answer_len = torch.randint(1, LA + 1, (B, R), generator=g) * present
    return DialogBatch(
        image=torch.randn(B, K, IMG, generator=g),
        caption=_tokens(g, (B, LC), caption_len),
        caption_len=caption_len,
        question=_tokens(g, (B, R, LQ), question_len),
        question_len=question_len,
        answer=_tokens(g, (B, R, LA), answer_len),
        answer_len=answer_len,
        num_rounds=nr,
        options=torch.zeros(B, R, 2, LA, dtype=torch.long),
        options_len=torch.zeros(B, R, 2, dtype=torch.long),
        gt_index=torch.zeros(B, R, dtype=torch.long),
    )


def make_encoder(name: str, seed: int = 0, train: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    embedding = nn.Embedding(VOCAB, EMB, padding_idx=PAD_ID)
    enc = build_encoder(name, embedding, hidden=HIDDEN, img_dim=IMG, out_dim=OUT, dropout=0.5)
    return enc.train(train)


def encode(enc: nn.Module, batch: DialogBatch) -> torch.Tensor:
    with torch.no_grad():
        return enc(batch)


# --- history building -------------------------------------------------------------------------


def test_qa_pairs_concatenates_real_tokens_only():
    q = torch.tensor([[[5, 6, 0], [7, 0, 0]]])
    a = torch.tensor([[[8, 0], [9, 10]]])
    qa, n = qa_pairs(q, torch.tensor([[2, 1]]), a, torch.tensor([[1, 2]]))
    assert qa.tolist() == [[[5, 6, 8, 0, 0], [7, 9, 10, 0, 0]]]
    assert n.tolist() == [[3, 3]]


def test_history_facts_are_caption_then_previous_qa_pairs():
    batch = make_batch()
    facts, lengths = history_facts(batch)
    assert facts.shape == (B, R, max(LC, LQ + LA))
    b = 0
    assert (
        facts[b, 0, : batch.caption_len[b]].tolist()
        == batch.caption[b, : batch.caption_len[b]].tolist()
    )
    for j in range(1, R):
        ql, al = int(batch.question_len[b, j - 1]), int(batch.answer_len[b, j - 1])
        want = batch.question[b, j - 1, :ql].tolist() + batch.answer[b, j - 1, :al].tolist()
        assert facts[b, j, : ql + al].tolist() == want
        assert (facts[b, j, ql + al :] == PAD_ID).all()
        assert lengths[b, j] == ql + al
    # dialog 2 has one round: its QA pair is fact 1 (never read by a real round), then nothing
    assert lengths[2, 1] > 0
    assert lengths[2, 2:].tolist() == [0] * (R - 2)


def test_causal_mask_allows_facts_up_to_the_round():
    fact_len = torch.tensor([[4, 3, 3, 0]])
    mask = causal_history_mask(fact_len)[0].int()
    assert mask.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]]


def test_sequence_lstm_reads_each_row_at_its_last_token():
    torch.manual_seed(0)
    rnn = SequenceLSTM(nn.Embedding(VOCAB, EMB, padding_idx=PAD_ID), HIDDEN, 0.0, buckets=3)
    lengths = torch.tensor([3, 0, 7, 1, 7, 5, 2])
    tokens = _tokens(torch.Generator().manual_seed(0), (7, 9), lengths)
    with torch.no_grad():
        outputs, last = rnn.run(tokens, lengths)
        for i, n in enumerate(lengths.tolist()):
            if n == 0:
                assert (last[i] == 0).all()
                continue
            want = rnn.lstm(rnn.embedding(tokens[i : i + 1, :n]))[0][0]  # (n, H)
            torch.testing.assert_close(outputs[i, :n], want, rtol=0, atol=1e-6)
            torch.testing.assert_close(last[i], want[-1], rtol=0, atol=1e-6)


# --- contracts of every encoder ---------------------------------------------------------------


def test_build_encoder_rejects_unknown_name():
    with pytest.raises(InputError, match="unknown encoder"):
        build_encoder("lstm", nn.Embedding(VOCAB, EMB))


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_out_dim(name):
    enc = make_encoder(name)
    assert enc.out_dim == OUT
    out = encode(enc, make_batch())
    assert out.shape == (B, R, OUT)
    assert out.abs().max() <= 1  # tanh output


@pytest.mark.parametrize("name", NAMES)
def test_round_t_sees_only_earlier_rounds(name):
    enc = make_encoder(name)
    batch = make_batch()
    base = encode(enc, batch)
    g = torch.Generator().manual_seed(1)
    for t in range(R - 1):
        answer, answer_len = batch.answer.clone(), batch.answer_len.clone()
        question, question_len = batch.question.clone(), batch.question_len.clone()
        answer_len[0, t] = LA + 1 - answer_len[0, t]  # a different length, still >= 1
        answer[0, t] = _tokens(g, (LA,), answer_len[0, t])
        question[0, t + 1] = _tokens(g, (LQ,), question_len[0, t + 1])
        changed = dataclasses.replace(
            batch, answer=answer, answer_len=answer_len, question=question
        )
        out = encode(enc, changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-6)
        assert (out[0, t + 1] - base[0, t + 1]).abs().max() > 1e-4  # round t+1 does see them


@pytest.mark.parametrize("name", NAMES)
def test_padding_does_not_change_output(name):
    enc = make_encoder(name)
    batch = make_batch()
    base = encode(enc, batch)

    def widen(x, extra):
        return torch.nn.functional.pad(x, (0, extra), value=PAD_ID)

    padded = dataclasses.replace(
        batch,
        caption=widen(batch.caption, 3),
        question=widen(batch.question, 4),
        answer=widen(batch.answer, 2),
    )
    torch.testing.assert_close(encode(enc, padded), base, rtol=0, atol=1e-6)

    # whatever sits in the padded slots is never read
    g = torch.Generator().manual_seed(2)

    def scribble(x, lengths):
        junk = torch.randint(4, VOCAB, x.shape, generator=g)
        return torch.where(torch.arange(x.shape[-1]) < lengths.unsqueeze(-1), x, junk)

    junk = dataclasses.replace(
        batch,
        caption=scribble(batch.caption, batch.caption_len),
        question=scribble(batch.question, batch.question_len),
        answer=scribble(batch.answer, batch.answer_len),
    )
    torch.testing.assert_close(encode(enc, junk), base, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_embedding_and_every_parameter(name):
    enc = make_encoder(name, train=True)
    enc(make_batch()).square().sum().backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert enc.embedding.weight.grad[PAD_ID].abs().sum() == 0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_with_seed(name):
    batch = make_batch()
    outs = []
    for _ in range(2):
        enc = make_encoder(name, seed=3, train=True)
        torch.manual_seed(4)  # dropout masks
        outs.append(enc(batch).detach())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    other = make_encoder(name, seed=5, train=True)
    torch.manual_seed(4)
    assert not torch.equal(other(batch).detach(), outs[0])


@pytest.mark.parametrize("name", NAMES)
def test_absent_rounds_and_empty_dialogs_stay_finite(name):
    enc = make_encoder(name, train=True)
    out = enc(make_batch(num_rounds=(R, 2, 0)))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


# --- the math, against direct loops over one dialog --------------------------------------------


def _lstm_last(rnn, ids: list[int]) -> torch.Tensor:
    """Last state of the encoder's LSTM over the real tokens only, no packing."""
    emb = rnn.embedding(torch.tensor([ids]))  # (1, L, E)
    return rnn.lstm(emb)[1][0][0, 0]  # (H,)


def _history_lists(batch: DialogBatch, b: int) -> list[list[int]]:
    """Fact j of dialog b as a Python list: caption, then question j-1 + answer j-1."""
    facts = [batch.caption[b, : batch.caption_len[b]].tolist()]
    for j in range(int(batch.num_rounds[b]) - 1):
        q = batch.question[b, j, : batch.question_len[b, j]].tolist()
        facts.append(q + batch.answer[b, j, : batch.answer_len[b, j]].tolist())
    return facts


def _attend(att, keys: list[torch.Tensor], query: torch.Tensor) -> torch.Tensor:
    """z_j = w_a . tanh(W_k k_j + W_q q + b_q); alpha = exp(z) / sum exp(z); sum_j alpha_j k_j."""
    z = [
        att.w_a.weight[0] @ torch.tanh(att.W_k.weight @ k + att.W_q.weight @ query + att.W_q.bias)
        for k in keys
    ]
    weights = [torch.exp(zj) for zj in z]
    total = sum(weights)
    return sum(w / total * k for w, k in zip(weights, keys, strict=True))


def test_hciae_matches_equations_1_to_3_for_each_round():
    enc = make_encoder("hciae").double()
    assert isinstance(enc, HCIAE)
    batch = make_batch()
    batch = dataclasses.replace(batch, image=batch.image.double())
    out = encode(enc, batch)
    with torch.no_grad():
        for b in (0, 1):
            facts = _history_lists(batch, b)
            M_h = [_lstm_last(enc.history_rnn, f) for f in facts]
            V = [
                torch.tanh(enc.image_embed.linear.weight @ v + enc.image_embed.linear.bias)
                for v in batch.image[b]
            ]
            for t in range(int(batch.num_rounds[b])):
                m_q = _lstm_last(
                    enc.question_rnn, batch.question[b, t, : batch.question_len[b, t]].tolist()
                )
                m_h = _attend(enc.history_attention, M_h[: t + 1], m_q)  # Eq. 1-2
                v = _attend(enc.image_attention, V, torch.cat([m_q, m_h]))
                e = torch.tanh(enc.W_e.weight @ torch.cat([m_q, m_h, v]) + enc.W_e.bias)  # Eq. 3
                torch.testing.assert_close(out[b, t], e, rtol=0, atol=1e-10)


def test_late_fusion_history_is_lstm_over_concatenated_history():
    enc = make_encoder("lf").double()
    assert isinstance(enc, LateFusion)
    batch = make_batch()
    with torch.no_grad():
        states = enc.encode_history(batch)
        facts = _history_lists(batch, 0)
        for t in range(R):
            want = _lstm_last(enc.history_rnn, sum(facts[: t + 1], []))
            torch.testing.assert_close(states[0, t], want, rtol=0, atol=1e-10)


def test_memory_network_reads_softmax_of_dot_products():
    enc = make_encoder("mn").double()
    assert isinstance(enc, MemoryNetwork)
    g = torch.Generator().manual_seed(0)
    m_q = torch.randn(1, 3, HIDDEN, generator=g, dtype=torch.double)
    mem = torch.randn(1, 3, HIDDEN, generator=g, dtype=torch.double)
    mask = causal_history_mask(torch.tensor([[2, 2, 2]]))
    u = enc.read_memory(m_q, mem, mask)
    t = 1
    w = torch.exp(torch.stack([m_q[0, t] @ mem[0, j] for j in range(t + 1)]))
    want = m_q[0, t] + sum(w[j] / w.sum() * mem[0, j] for j in range(t + 1))
    torch.testing.assert_close(u[0, t], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_dropout_acts_in_train_mode_only(name):
    enc = make_encoder(name, train=True)
    batch = make_batch()
    enc.question_rnn.dropout.p = enc.history_rnn.dropout.p = 0.0  # keep only the other dropouts
    torch.manual_seed(0)
    a = enc(batch).detach()
    enc.question_rnn.dropout.p = enc.history_rnn.dropout.p = 0.5  # word-embedding dropout
    torch.manual_seed(0)
    assert not torch.equal(enc(batch).detach(), a)
    enc.eval()
    torch.testing.assert_close(encode(enc, batch), encode(enc, batch), rtol=0, atol=0)

import torch
from torch import nn

from pipeline.data.vocab import PAD_ID
from pipeline.models.answer_encoder import AnswerEncoder

V, E, D, H, T = 20, 6, 5, 8, 4


def _encoder(attention=True, seed=0):
    torch.manual_seed(seed)
    return AnswerEncoder(nn.Embedding(V, E, padding_idx=PAD_ID), D, hidden=H, attention=attention)


def _answers(shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, shape, generator=g)
    tokens = torch.randint(4, V, (*shape, T), generator=g)
    steps = torch.arange(T)
    return tokens.masked_fill(steps >= lengths.unsqueeze(-1), PAD_ID), lengths


def _manual_f(enc, tokens, length):
    """f(a) for one answer, step by step with the module's own weights."""
    emb = enc.embedding(tokens[:length]).unsqueeze(0)  # (1, L, E)
    states, _ = enc.lstm(emb)
    states = states[0]  # (L, H)
    if enc.attention:
        scores = torch.stack(
            [enc.att_score(torch.tanh(enc.att_hidden(h))).squeeze() for h in states]
        )
        alpha = torch.softmax(scores, 0)
        pooled = sum(a * h for a, h in zip(alpha, states, strict=True))
    else:
        pooled = states[-1]
    return torch.tanh(enc.proj(pooled))


def test_f_matches_a_direct_computation_and_ignores_padding():
    for attention in (True, False):
        enc = _encoder(attention)
        tokens, lengths = _answers((5,))
        f = enc(tokens, lengths)
        assert f.shape == (5, D)
        for n in range(5):
            torch.testing.assert_close(f[n], _manual_f(enc, tokens[n], int(lengths[n])))
        garbage = tokens.masked_fill(tokens == PAD_ID, 9)
        torch.testing.assert_close(enc(garbage, lengths), f)


def test_attention_weights_are_masked_and_normalised():
    enc = _encoder()
    states = torch.randn(3, T, H)
    alpha = enc.attention_weights(states, torch.tensor([1, 3, 4]))
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3))
    assert alpha[0, 1:].abs().sum() == 0 and alpha[1, 3] == 0 and (alpha[2] > 0).all()


def test_one_hot_input_equals_ids_and_passes_gradients():
    for attention in (True, False):
        enc = _encoder(attention)
        tokens, lengths = _answers((2, 3))
        one_hot = nn.functional.one_hot(tokens, V).float().requires_grad_()
        f_ids = enc(tokens, lengths)
        f_hot = enc(one_hot, lengths)
        assert f_ids.shape == (2, 3, D)
        torch.testing.assert_close(f_hot, f_ids)
        f_hot.sum().backward()
        assert one_hot.grad.abs().sum() > 0


def test_score_batches_all_options():
    enc = _encoder()
    m, o = 3, 6
    e = torch.randn(m, D)
    options, lengths = _answers((m, o), seed=2)
    scores = enc.score(e, options, lengths)
    assert scores.shape == (m, o)
    for j in range(o):
        single = enc.score(e, options[:, j], lengths[:, j])  # (M,)
        torch.testing.assert_close(scores[:, j], single)
        torch.testing.assert_close(single, (e * enc(options[:, j], lengths[:, j])).sum(-1))


def test_empty_answers_get_a_finite_embedding():
    for attention in (True, False):
        f = _encoder(attention)(
            torch.zeros(2, T, dtype=torch.long), torch.zeros(2, dtype=torch.long)
        )
        assert torch.isfinite(f).all()

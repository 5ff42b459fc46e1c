import itertools
import math

import pytest
import torch
from torch import nn

from pipeline.data.vocab import END_ID, PAD_ID, START_ID
from pipeline.models.decoder import AnswerDecoder, lengths_until_end, teacher_forcing

V, E, D, H = 20, 6, 5, 8


def _model(vocab=V, seed=0):
    torch.manual_seed(seed)
    model = AnswerDecoder(nn.Embedding(vocab, E, padding_idx=PAD_ID), enc_dim=D, hidden=H)
    # Sharper output distributions than the default init, so decoders differ visibly.
    with torch.no_grad():
        model.out.weight.mul_(8.0)
    return model.eval()


def _answers(m, la, seed=1, vocab=V):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, la + 1, (m,), generator=g)
    tokens = torch.randint(4, vocab, (m, la), generator=g)
    steps = torch.arange(la).unsqueeze(0)
    return tokens.masked_fill(steps >= lengths.unsqueeze(1), PAD_ID), lengths


def test_teacher_forcing_prepends_start_and_appends_end():
    answer = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [4, 4, 4, 4], [9, 9, 0, 0]])
    lengths = torch.tensor([3, 1, 4, 0])
    inputs, targets, mask = teacher_forcing(answer, lengths)
    assert inputs.tolist() == [
        [2, 5, 6, 7, 0],
        [2, 8, 0, 0, 0],
        [2, 4, 4, 4, 4],
        [2, 0, 0, 0, 0],
    ]
    assert targets.tolist() == [
        [5, 6, 7, 3, 0],
        [8, 3, 0, 0, 0],
        [4, 4, 4, 4, 3],
        [3, 0, 0, 0, 0],
    ]
    assert mask.int().tolist() == [
        [1, 1, 1, 1, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0],
    ]
    assert lengths_until_end(torch.tensor([[5, 3, 3], [5, 6, 7], [3, 1, 1]])).tolist() == [1, 3, 0]


def test_forward_is_causal_and_conditioned_on_e():
    model = _model()
    e = torch.randn(3, D)
    tokens = torch.randint(4, V, (3, 5))
    logits = model(e, tokens)
    assert logits.shape == (3, 5, V)
    changed = tokens.clone()
    changed[:, 3:] = 7
    torch.testing.assert_close(model(e, changed)[:, :3], logits[:, :3])
    assert not torch.allclose(model(e + 1.0, tokens), logits)


def _naive_log_prob(model, e_row, tokens, length):
    inputs = [START_ID, *tokens[:length]]
    targets = [*tokens[:length], END_ID]
    logits = model(e_row.unsqueeze(0), torch.tensor([inputs]))[0]
    total = 0.0
    for t, target in enumerate(targets):
        row = logits[t].tolist()
        total += row[target] - math.log(sum(math.exp(x) for x in row))
    return total


def test_mle_loss_is_mean_token_nll_including_end():
    model = _model()
    e = torch.randn(4, D)
    answer, lengths = _answers(4, 5)
    mask = torch.tensor([True, True, False, True])
    got = model.mle_loss(e, answer, lengths, mask).item()
    lps = [_naive_log_prob(model, e[m], answer[m].tolist(), int(lengths[m])) for m in (0, 1, 3)]
    tokens = sum(int(lengths[m]) + 1 for m in (0, 1, 3))
    assert got == pytest.approx(-sum(lps) / tokens, rel=1e-5)


def test_log_prob_scores_every_option_in_one_batch():
    model = _model()
    m, o, la = 3, 4, 5
    e = torch.randn(m, D)
    options, lengths = _answers(m * o, la, seed=2)
    options, lengths = options.view(m, o, la), lengths.view(m, o)
    got = model.log_prob(e, options, lengths)
    assert got.shape == (m, o)
    for i, j in itertools.product(range(m), range(o)):
        expected = _naive_log_prob(model, e[i], options[i, j].tolist(), int(lengths[i, j]))
        assert got[i, j].item() == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(model.log_prob(e, options, lengths, chunk=5), got)
    # Tokens past an option's length do not count.
    garbage = options.masked_fill(options == PAD_ID, 9)
    torch.testing.assert_close(model.log_prob(e, garbage, lengths), got)


def test_log_prob_prefix_tree_equals_teacher_forcing_on_shared_prefixes():
    """Options that share prefixes, repeat, are empty or fill La: the prefix-tree walk (eval)
    gives teacher forcing's numbers, and the direct computation's."""
    model = _model()
    pool = [[5], [5, 6], [5, 6, 7], [5, 6, 8], [9, 5, 6, 7, 8], [], [9], [5, 6, 7]]
    m, la = 4, 5
    g = torch.Generator().manual_seed(3)
    picks = torch.randint(0, len(pool), (m, 6), generator=g)
    options = torch.zeros(m, 6, la, dtype=torch.long)
    lengths = torch.zeros(m, 6, dtype=torch.long)
    for i, j in itertools.product(range(m), range(6)):
        answer = pool[int(picks[i, j])]
        options[i, j, : len(answer)] = torch.tensor(answer, dtype=torch.long)
        lengths[i, j] = len(answer)
    e = torch.randn(m, D)
    tree = model._prefix_tree_log_prob(e, options, lengths, chunk=3)
    flat = model._sequence_log_prob(e, options, lengths, chunk=7)
    torch.testing.assert_close(tree, flat)
    torch.testing.assert_close(model.log_prob(e, options, lengths), tree)
    for i, j in itertools.product(range(m), range(6)):
        expected = _naive_log_prob(model, e[i], options[i, j].tolist(), int(lengths[i, j]))
        assert tree[i, j].item() == pytest.approx(expected, rel=1e-5)
    # Training mode with dropout scores each sequence with its own masks (teacher forcing).
    torch.manual_seed(0)
    dropped = AnswerDecoder(nn.Embedding(V, E, padding_idx=PAD_ID), D, H, dropout=0.5).train()
    torch.manual_seed(1)
    got = dropped.log_prob(e, options, lengths)
    torch.manual_seed(1)
    torch.testing.assert_close(got, dropped._sequence_log_prob(e, options, lengths, 1024))


def _check_decoded(model, e, tokens, lengths, max_len):
    """Every decoded answer is 0-padded after its length and never holds <pad>/<start>/<end>."""
    steps = torch.arange(max_len).unsqueeze(0)
    inside = steps < lengths.unsqueeze(1)
    assert (tokens[~inside] == PAD_ID).all()
    assert not torch.isin(tokens[inside], torch.tensor([PAD_ID, START_ID, END_ID])).any()


def test_greedy_picks_the_argmax_at_every_step():
    model = _model()
    e = torch.randn(6, D, generator=torch.Generator().manual_seed(0)) * 2  # ends some early
    tokens, lengths = model.greedy(e, max_len=6)
    _check_decoded(model, e, tokens, lengths, 6)
    inputs, targets, mask = teacher_forcing(tokens, lengths)
    logits = model._forbid(model(e, inputs))
    mask[:, 6] = False  # an answer cut at max_len got no <end> from the decoder
    assert torch.equal(logits.argmax(-1)[mask], targets[mask])
    assert (lengths < 6).any() and (lengths == 6).any()
    # Low-temperature sampling is greedy; seeded sampling is reproducible.
    cold, cold_len = model.sample(e, temperature=1e-4, max_len=6)
    assert torch.equal(cold, tokens) and torch.equal(cold_len, lengths)
    s1 = model.sample(e, max_len=6, generator=torch.Generator().manual_seed(0))
    s2 = model.sample(e, max_len=6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s1[0], s2[0])
    _check_decoded(model, e, *s1, 6)


def test_beam_search_with_beam_one_is_greedy():
    model = _model()
    e = torch.randn(5, D) * 2
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.beam_search(e, 1, max_len=6), model.greedy(e, max_len=6), strict=True)
    )


def test_wide_beam_search_finds_the_most_likely_answer():
    vocab, max_len = 8, 2  # tokens 1 and 3..7 may be emitted: 31 answers of <= 2 tokens
    model = _model(vocab=vocab, seed=3)
    e = torch.randn(32, D) * 2
    words = [1, 4, 5, 6, 7]
    answers = [[]] + [[w] for w in words] + [[a, b] for a in words for b in words]
    options = torch.tensor([a + [0] * (max_len - len(a)) for a in answers])  # (31, 2)
    lengths = torch.tensor([len(a) for a in answers])
    scores = model.log_prob(e, options.expand(32, -1, -1), lengths.expand(32, -1))  # (32, 31)
    best = scores.argmax(1)
    tokens, got_len = model.beam_search(e, beam_size=40, max_len=max_len)
    assert torch.equal(tokens, options[best]) and torch.equal(got_len, lengths[best])
    greedy_scores = model.log_prob(e, *(x.unsqueeze(1) for x in model.greedy(e, max_len)))
    assert (scores.max(1).values >= greedy_scores.squeeze(1) - 1e-6).all()


def test_gumbel_rollout_samples_with_eq6_and_feeds_one_hots_back():
    model = _model()
    e = torch.randn(6, D)
    max_len, tau = 5, 0.5
    one_hot, lengths = model.gumbel_rollout(
        e, tau, max_len, generator=torch.Generator().manual_seed(7)
    )
    assert one_hot.shape == (6, max_len, V)
    steps = torch.arange(max_len).unsqueeze(0)
    inside = steps < lengths.unsqueeze(1)
    assert set(one_hot.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(one_hot.sum(-1), inside.float())  # one-hot before <end>, zero from it on
    tokens = one_hot.argmax(-1).masked_fill(~inside, PAD_ID)
    # Replay: with the same noise stream, each token is argmax(log p + g) of the teacher-forced
    # distribution after the previous sampled tokens.
    inputs, targets, mask = teacher_forcing(tokens, lengths)
    logits = model._forbid(model(e, inputs))  # (6, max_len + 1, V)
    gen = torch.Generator().manual_seed(7)
    for t in range(max_len):
        noise = -torch.log(-torch.log(torch.rand(6, V, generator=gen).clamp_min(1e-38)))
        picked = (torch.log_softmax(logits[:, t], -1) + noise).argmax(-1)
        alive = lengths >= t
        assert torch.equal(picked[alive], targets[alive, t])
        if not (lengths > t).any():
            break


def test_gumbel_rollout_gradients_reach_generator():
    model = _model()
    model.train()
    e = torch.randn(6, D, requires_grad=True)
    one_hot, lengths = model.gumbel_rollout(e, 0.5, 5, generator=torch.Generator().manual_seed(1))
    assert lengths.max() > 1
    (one_hot * torch.randn(V)).sum().backward()
    for p in (model.out.weight, model.lstm.weight_hh_l0, model.init_h.weight, e):
        grad = p.grad
        assert grad is not None and grad.abs().sum() > 0
    assert model.embedding.weight.grad[4:].abs().sum() > 0
    again, _ = model.gumbel_rollout(e, 0.5, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, one_hot)

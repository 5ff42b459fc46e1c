import math

import pytest
import torch

from pipeline.models.losses import (
    masked_token_nll,
    negatives_from_options,
    npair_loss,
    options_cross_entropy,
    perceptual_loss,
    sequence_log_prob,
)


def _dot(a, b):
    return sum(x * y for x, y in zip(a.tolist(), b.tolist(), strict=True))


def _sq(a):
    return sum(x * x for x in a.tolist())


def _naive_npair(e, f_gt, f_neg, neg_mask, l2, mask):
    total, rounds = 0.0, 0
    for m in range(e.shape[0]):
        if not mask[m]:
            continue
        s_gt = _dot(e[m], f_gt[m])
        negs = [i for i in range(f_neg.shape[1]) if neg_mask[m, i]]
        loss = math.log(1 + sum(math.exp(_dot(e[m], f_neg[m, i]) - s_gt) for i in negs))
        reg = _sq(e[m]) + _sq(f_gt[m])
        if negs:
            reg += sum(_sq(f_neg[m, i]) for i in negs) / len(negs)
        total += loss + l2 * reg
        rounds += 1
    return total / rounds


def test_npair_loss_matches_eq4_with_masks_and_l2():
    torch.manual_seed(0)
    e, f_gt, f_neg = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 6, 4)
    neg_mask = torch.rand(5, 6) > 0.3
    neg_mask[1] = False  # a round without negatives: loss log(1) = 0, no NaN
    mask = torch.tensor([True, True, False, True, True])
    got = npair_loss(e, f_gt, f_neg, neg_mask, l2=0.1, mask=mask)
    assert got.item() == pytest.approx(_naive_npair(e, f_gt, f_neg, neg_mask, 0.1, mask), rel=1e-5)
    no_reg = npair_loss(e, f_gt, f_neg, neg_mask, l2=0.0, mask=mask)
    assert no_reg.item() == pytest.approx(
        _naive_npair(e, f_gt, f_neg, neg_mask, 0.0, mask), rel=1e-5
    )


def test_npair_from_options_excludes_the_ground_truth():
    torch.manual_seed(1)
    e, f_options = torch.randn(4, 3), torch.randn(4, 8, 3)
    gt_index = torch.tensor([0, 5, 7, 2])
    options_len = torch.ones(4, 8, dtype=torch.long)
    options_len[2, 1] = 0  # an empty (padding) option is no negative either
    f_gt, f_neg, neg_mask = negatives_from_options(f_options, gt_index, options_len)
    assert not neg_mask[torch.arange(4), gt_index].any()
    assert neg_mask.sum() == 4 * 7 - 1
    torch.testing.assert_close(f_gt, f_options[torch.arange(4), gt_index])
    got = npair_loss(e, f_gt, f_neg, neg_mask).item()
    expected = 0.0
    for m in range(4):
        s_gt = _dot(e[m], f_options[m, gt_index[m]])
        others = [i for i in range(8) if i != gt_index[m] and options_len[m, i] > 0]
        expected += math.log(1 + sum(math.exp(_dot(e[m], f_options[m, i]) - s_gt) for i in others))
    assert got == pytest.approx(expected / 4, rel=1e-5)
    # The authors' bug (ground truth among its own negatives) would add exp(0) = 1 inside the log.
    with_gt = npair_loss(e, f_gt, f_neg, options_len > 0).item()
    assert with_gt > got + 0.01


def test_npair_and_perceptual_are_stable_for_large_margins():
    e = torch.tensor([[10.0, 0.0]])
    f_gt = torch.tensor([[-10.0, 0.0]])
    f_neg = torch.tensor([[[10.0, 0.0]]])
    assert npair_loss(e, f_gt, f_neg).item() == pytest.approx(200.0)
    assert perceptual_loss(e, f_gt, f_neg[:, 0]).item() == pytest.approx(0.0, abs=1e-30)
    assert perceptual_loss(e, f_neg[:, 0], f_gt).item() == pytest.approx(200.0)


def test_perceptual_loss_matches_eq5():
    torch.manual_seed(2)
    e, f_gt, f_hat = torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5)
    mask = torch.tensor([True, False, True, True, True, False])
    expected = [
        math.log(1 + math.exp(_dot(e[m], f_gt[m]) - _dot(e[m], f_hat[m])))
        for m in range(6)
        if mask[m]
    ]
    got = perceptual_loss(e, f_gt, f_hat, mask)
    assert got.item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_options_cross_entropy_matches_softmax_ce():
    torch.manual_seed(3)
    scores = torch.randn(5, 7, requires_grad=True)
    gt_index = torch.tensor([3, -1, 0, 6, 2])
    mask = torch.tensor([True, True, True, False, True])
    options_mask = torch.ones(5, 7, dtype=torch.bool)
    options_mask[0, 5:] = False
    got = options_cross_entropy(scores, gt_index, mask, options_mask)
    expected = []
    for m in (0, 2, 4):
        s = scores[m].tolist()
        kept = [j for j in range(7) if options_mask[m, j]]
        z = sum(math.exp(s[j]) for j in kept)
        expected.append(-math.log(math.exp(s[gt_index[m]]) / z))
    assert got.item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    got.backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad[1].abs().sum() == 0 and scores.grad[3].abs().sum() == 0


def test_token_losses_match_direct_computation():
    torch.manual_seed(4)
    logits = torch.randn(3, 4, 6)
    targets = torch.randint(0, 6, (3, 4))
    token_mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    sums = [0.0, 0.0, 0.0]
    for n in range(3):
        for t in range(4):
            if token_mask[n, t]:
                row = logits[n, t].tolist()
                lse = math.log(sum(math.exp(x) for x in row))
                sums[n] += row[targets[n, t]] - lse
    torch.testing.assert_close(sequence_log_prob(logits, targets, token_mask), torch.tensor(sums))
    nll = masked_token_nll(logits, targets, token_mask).item()
    assert nll == pytest.approx(-sum(sums) / 8, rel=1e-5)
    # G passes only the logits of the real tokens, (K, V): same values.
    rows = logits[token_mask]
    torch.testing.assert_close(sequence_log_prob(rows, targets, token_mask), torch.tensor(sums))
    assert masked_token_nll(rows, targets, token_mask).item() == pytest.approx(nll)

import math

import pytest
import torch

from pipeline.evaluation.metrics import (
    RetrievalMetrics,
    ndcg_of_rounds,
    ranks_of_options,
    round_outcomes,
)


def _hand_scores():
    o = 12
    scores = torch.arange(o, 0, -1, dtype=torch.float).repeat(4, 1)  # option i has score 12 - i
    scores[2, 1] = scores[2, 0]  # row 2: option 1 ties with the ground truth (option 0)
    gt_index = torch.tensor([0, 2, 0, -1])
    return scores, gt_index


def test_retrieval_metrics_on_a_hand_made_matrix():
    scores, gt_index = _hand_scores()
    scores = torch.cat([scores, scores[:1]])
    gt_index = torch.cat([gt_index, torch.tensor([10])])
    metrics = RetrievalMetrics()
    metrics.observe(scores, gt_index)
    got = metrics.retrieve()
    # Ranks: 1, 3, 1.5 (tied with one other: uniform on {1, 2}), row 3 skipped, 11.
    assert got["count"] == 4
    assert got["mean_rank"] == pytest.approx((1 + 3 + 1.5 + 11) / 4)
    assert got["mrr"] == pytest.approx((1 + 1 / 3 + (1 + 1 / 2) / 2 + 1 / 11) / 4)
    assert got["r@1"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert got["r@5"] == pytest.approx(3 / 4)
    assert got["r@10"] == pytest.approx(3 / 4)


def test_all_equal_scores_give_chance_level():
    metrics = RetrievalMetrics()
    metrics.observe(torch.zeros(3, 100), torch.tensor([0, 42, 99]))
    got = metrics.retrieve()
    assert got["mean_rank"] == pytest.approx(50.5)
    assert got["r@1"] == pytest.approx(0.01)
    assert got["r@5"] == pytest.approx(0.05)
    assert got["r@10"] == pytest.approx(0.10)
    assert got["mrr"] == pytest.approx(sum(1 / r for r in range(1, 101)) / 100)


def test_tie_metrics_are_expectations_under_random_tie_breaking():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (6, 12), generator=g).float()  # many ties
    gt_index = torch.randint(0, 12, (6,), generator=g)
    metrics = RetrievalMetrics()
    metrics.observe(scores, gt_index)
    got = metrics.retrieve()
    trials = 4000
    noise = torch.rand(trials, 6, 12, generator=g) * 0.5  # breaks ties, keeps the score order
    broken = scores.unsqueeze(0) + noise  # (trials, 6, 12)
    gt = broken.gather(2, gt_index.view(1, 6, 1).expand(trials, 6, 1))
    ranks = 1 + (broken > gt).sum(2).double()  # (trials, 6)
    assert got["mean_rank"] == pytest.approx(ranks.mean().item(), abs=0.05)
    assert got["mrr"] == pytest.approx((1 / ranks).mean().item(), abs=0.01)
    for k in (1, 5, 10):
        assert got[f"r@{k}"] == pytest.approx((ranks <= k).double().mean().item(), abs=0.01)


def test_accumulates_over_batches_and_resets():
    scores, gt_index = _hand_scores()
    whole = RetrievalMetrics()
    whole.observe(scores, gt_index)
    parts = RetrievalMetrics()
    parts.observe(scores[:1], gt_index[:1])
    parts.observe(scores[1:], gt_index[1:])
    assert parts.retrieve() == pytest.approx(whole.retrieve())
    parts.reset()
    assert parts.retrieve()["count"] == 0
    parts.observe(scores[3:], gt_index[3:])  # only a row without ground truth
    assert parts.retrieve()["count"] == 0


def test_ranks_of_options():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [1.0, 1.0, 0.0, 1.0]])
    assert ranks_of_options(scores).tolist() == [[4, 1, 2, 3], [1, 2, 4, 3]]
    g = torch.Generator().manual_seed(1)
    ranks = ranks_of_options(torch.randint(0, 5, (8, 100), generator=g).float())
    assert torch.equal(ranks.sort(1).values, torch.arange(1, 101).expand(8, -1))


def test_ndcg_on_a_hand_made_example():
    relevance = torch.tensor([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    scores = torch.tensor([[0.5, 0.2, 0.9, 0.1], [1.0, 2.0, 3.0, 4.0], [0.0, 3.0, 2.0, 1.0]])
    got = ndcg_of_rounds(scores, relevance)
    # Row 0: k = 2, model's top 2 = options 2, 0 -> DCG = 0/log2(2) + 1/log2(3);
    # ideal top 2 = 1, 0.5 -> 1/log2(2) + 0.5/log2(3). Row 1 has no relevant option: skipped.
    # Row 2: k = 1, option 1 is first -> 1.
    row0 = (1 / math.log2(3)) / (1 + 0.5 / math.log2(3))
    assert got[0].item() == pytest.approx(row0)
    assert got[1].isnan()
    assert got[2].item() == pytest.approx(1.0)


def test_ndcg_ties_are_expected_over_random_orders():
    relevance = torch.tensor([[1.0, 0.0, 0.5, 0.0, 0.0, 0.25]])
    scores = torch.tensor([[2.0, 2.0, 1.0, 1.0, 1.0, 0.0]])
    exact = ndcg_of_rounds(scores, relevance).item()
    g = torch.Generator().manual_seed(2)
    trials = 3000
    broken = scores + torch.rand(trials, 6, generator=g) * 0.5  # (trials, 6) random tie orders
    sampled = ndcg_of_rounds(broken, relevance.expand(trials, -1)).mean().item()
    assert exact == pytest.approx(sampled, abs=0.005)
    # k = 3: positions 1-2 hold options {0, 1} (mean gain 0.5), position 3 holds {2, 3, 4} (1/6).
    ideal = 1 + 0.5 / math.log2(3) + 0.25 / 2
    expected = (0.5 + 0.5 / math.log2(3) + (1 / 6) / 2) / ideal
    assert exact == pytest.approx(expected)


def test_round_outcomes_on_hand_made_ranks():
    # Row 0: gt (option 1, score 3) beaten by options 0, 2, 3, no tie -> rank 4.
    # Row 1: gt (option 0) beaten by 1, tied with 2 others -> ranks 2..4 equally likely.
    scores = torch.tensor(
        [[5.0, 3.0, 4.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
         [2.0, 2.0, 7.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    )  # fmt: skip
    got = round_outcomes(scores, torch.tensor([1, 0]))
    assert got["rank"].tolist() == [4.0, 3.0]
    assert got["rr"].tolist() == pytest.approx([1 / 4, (1 / 2 + 1 / 3 + 1 / 4) / 3])
    assert got["r1"].tolist() == [0.0, 0.0]
    assert got["r5"].tolist() == [1.0, 1.0]
    assert got["r10"].tolist() == [1.0, 1.0]
    scores[1, 0] = 1.0  # options 1, 2, 3 now beat the ground truth, none ties with it
    got = round_outcomes(scores, torch.tensor([1, 0]))
    assert got["rank"][1].item() == 4.0
    assert got["r1"][1].item() == 0.0 and got["r5"][1].item() == 1.0

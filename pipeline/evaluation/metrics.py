"""Retrieval metrics over the 100 candidate options (paper §5 "Evaluation Protocol"; VisDial v1.0).

Scores are "higher is better" (D's e^T f(a), G's summed log-likelihood). Accumulators follow the
``observe(...)`` / ``retrieve()`` / ``reset()`` pattern; ``observe`` takes flattened rounds
(M = B * R rows).

Ties. A model that gives several options the same score has not ordered them, so every metric is
its **expected value when the tie is broken uniformly at random**. If b options score strictly
higher than the ground truth and t others tie with it, the ground truth's rank is uniform on
b+1 .. b+1+t, so

* ``mean_rank`` uses rank = b + 1 + t/2 (the mean of the tied ranks),
* ``r@k`` uses P(rank <= k) = clamp(k - b, 0, t + 1) / (t + 1),
* ``mrr`` uses E[1/rank] = (H(b + t + 1) - H(b)) / (t + 1), H = harmonic numbers.

Without ties these are the usual rank, 1[rank <= k] and 1/rank. A model scoring all 100 options
equally therefore gets mean rank 50.5, R@1 = 1 %, R@10 = 10 %, MRR = H(100)/100 ≈ 0.0519 -- the
chance level -- and never the rank 1 that "1 + #strictly better" (the authors' code) would give.
"""

from __future__ import annotations

import torch
from torch import Tensor

RECALL_AT = (1, 5, 10)


def _harmonic(n: int, device: torch.device) -> Tensor:
    """H(0..n) in float64: H(0) = 0, H(i) = sum_{r<=i} 1/r."""
    r = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    return torch.cat([torch.zeros(1, dtype=torch.float64, device=device), (1.0 / r).cumsum(0)])


def gt_rank_stats(scores: Tensor, gt_index: Tensor) -> tuple[Tensor, Tensor]:
    """(#options strictly better than the ground truth, #other options tied with it), each (M,)."""
    gt_score = scores.gather(1, gt_index.clamp_min(0).unsqueeze(1))  # (M, 1)
    better = (scores > gt_score).sum(1)
    tied = (scores == gt_score).sum(1) - 1
    return better, tied


def ranks_of_options(scores: Tensor) -> Tensor:
    """(M, O) scores -> (M, O) 1-based integer ranks of every option (1 = best).

    Each row is a permutation of 1..O (the VisDial v1.0 submission format); tied options are
    ranked in option order (stable sort), the only deterministic choice a permutation allows.
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices  # (M, O)
    ranks = torch.empty_like(order)
    positions = torch.arange(1, scores.shape[1] + 1, device=scores.device)
    return ranks.scatter_(1, order, positions.expand_as(order))


ROUND_COLUMNS = ("rank", "rr", *(f"r{k}" for k in RECALL_AT))  # per-round expected values


@torch.no_grad()
def round_outcomes(scores: Tensor, gt_index: Tensor) -> dict[str, Tensor]:
    """Per-round expected rank, reciprocal rank and hits under random tie-breaking (module doc).

    scores (M, O), gt_index (M,) >= 0 -> ``{"rank", "rr", "r1", "r5", "r10"}``, each (M,)
    float64. Every retrieval metric is the mean of one of these columns.
    """
    scores = scores.double()
    better, tied = (x.double() for x in gt_rank_stats(scores, gt_index))
    group = tied + 1
    harmonic = _harmonic(scores.shape[1], scores.device)
    b = better.long()
    out = {
        "rank": better + 1 + tied / 2,
        "rr": (harmonic[b + group.long()] - harmonic[b]) / group,
    }
    for k in RECALL_AT:
        out[f"r{k}"] = torch.minimum((k - better).clamp_min(0), group) / group
    return out


# round_outcomes column -> the metric that is its mean
METRIC_OF_COLUMN = {"rr": "mrr", "rank": "mean_rank", **{f"r{k}": f"r@{k}" for k in RECALL_AT}}


class RetrievalMetrics:
    """MRR, R@1/5/10 and mean rank of the ground truth among the options (ties: module doc):
    the means of :func:`round_outcomes`' columns over the observed rounds."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums = dict.fromkeys(METRIC_OF_COLUMN.values(), 0.0)
        self._count = 0

    @torch.no_grad()
    def observe(self, scores: Tensor, gt_index: Tensor) -> None:
        """scores (M, O), gt_index (M,); rows with ``gt_index < 0`` are skipped."""
        keep = gt_index >= 0
        scores, gt_index = scores[keep], gt_index[keep]
        if scores.shape[0] == 0:
            return
        outcomes = round_outcomes(scores, gt_index)
        for column, metric in METRIC_OF_COLUMN.items():
            self._sums[metric] += float(outcomes[column].sum())
        self._count += int(scores.shape[0])

    def retrieve(self) -> dict[str, float]:
        n = max(self._count, 1)
        out = {key: value / n for key, value in self._sums.items()}
        out["count"] = self._count
        return out


@torch.no_grad()
def ndcg_of_rounds(scores: Tensor, relevance: Tensor) -> Tensor:
    """Per-round NDCG: scores, relevance (M, O), relevance >= 0 -> (M,) float64; NaN for a round
    without a relevant option (skipped by the means).

    Normalised DCG over the top k options, k = #options with relevance > 0 (VisDial v1.0):
    DCG@k = sum_{i=1..k} rel_(i) / log2(i + 1) over the model's ranking, divided by the DCG@k of
    the ideal ranking (relevance sorted descending). Ties: the expected DCG under uniform random
    tie-breaking -- each position held by a group of tied options gets the group's mean
    relevance -- so the result does not depend on option order.
    """
    scores, relevance = scores.double(), relevance.double()
    k = (relevance > 0).sum(1)  # (M,)
    o = scores.shape[1]
    same = scores.unsqueeze(2) == scores.unsqueeze(1)  # (M, O, O)
    group_rel = (same.double() @ relevance.unsqueeze(2)).squeeze(2) / same.sum(2)  # (M, O)
    order = scores.argsort(dim=1, descending=True)  # any order within ties: same gains
    gains = group_rel.gather(1, order)  # (M, O) expected gain at each position
    ideal = relevance.sort(dim=1, descending=True).values  # (M, O)
    positions = torch.arange(1, o + 1, dtype=torch.float64, device=scores.device)
    discount = 1.0 / torch.log2(positions + 1)  # (O,)
    in_top_k = positions.unsqueeze(0) <= k.unsqueeze(1)  # (M, O)
    dcg = (gains * discount * in_top_k).sum(1)
    idcg = (ideal * discount * in_top_k).sum(1)
    return torch.where(k > 0, dcg / idcg.clamp_min(1e-300), torch.nan)

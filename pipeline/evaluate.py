"""Retrieval evaluation: rank the 100 options of every round with a model's scores."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from pipeline.batch import DialogBatch
from pipeline.metrics import RetrievalMetrics
from pipeline.runtime import autocast


@torch.no_grad()
def retrieval_metrics(model, batches: Iterable[DialogBatch], device: torch.device) -> dict:
    """MRR, R@1/5/10 and mean rank over every round with a known ground truth."""
    was_training = model.training
    model.eval()
    metrics = RetrievalMetrics()
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        with autocast(device):
            scores = model.score_options(batch).float()  # (B, R, O)
        keep = batch.round_mask.reshape(-1) & (batch.gt_index.reshape(-1) >= 0)
        metrics.observe(scores.flatten(0, 1)[keep], batch.gt_index.reshape(-1)[keep])
    model.train(was_training)
    return metrics.retrieve()

"""Retrieval evaluation: rank the 100 options of every round with a model's scores (paper §5).

G ranks by the summed log-likelihood of each option including ``<end>``, D by e^T f(a); both
come from ``model.score_options(batch) -> (B, R, 100)`` (one batched call per batch of dialogs,
no loop over options). Metrics and tie handling: ``pipeline/evaluation/metrics.py`` and
docs/evaluation.md. Options identical to the ground truth stay in the list: this is VisDial's
official protocol, and ties between them and the ground truth count by the expected rank.

* :func:`retrieval_metrics` — MRR, R@1/5/10, mean rank over the rounds with a ground truth (the
  trainer's per-epoch validation).
* :func:`evaluate_split` — the same plus NDCG on the v1.0 dense annotations when the split has
  them (``dense_round`` / ``dense_relevance`` in ``dialogs.h5``), and the per-round table the
  metrics are the means of (the ``compare`` stage's paired bootstrap resamples its dialogs).
* :func:`rank_challenge_split` — the v1.0 test-std submission: for every round that has options,
  the rank of each option, ``[{"image_id", "round_id" (1-based), "ranks": [100 ints]}]``.
* :func:`evaluate_model` — the ``evaluate`` stage: one checkpoint -> test metrics JSON, test
  rounds CSV, challenge ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.atomic import atomic_path, write_json
from pipeline.data.batch import DialogBatch
from pipeline.data.dataset import DialogDataset
from pipeline.data.loaders import dialog_chunks, load_data, splits_of
from pipeline.errors import InputError
from pipeline.evaluation.metrics import (
    METRIC_OF_COLUMN,
    ROUND_COLUMNS,
    RetrievalMetrics,
    ndcg_of_rounds,
    ranks_of_options,
    round_outcomes,
)
from pipeline.models.checkpoint import load_model
from pipeline.progress import progress_bar
from pipeline.runtime import autocast, resolve_device


def observe_rounds(metrics: RetrievalMetrics, scores: torch.Tensor, batch: DialogBatch) -> None:
    """Feed ``scores`` (B, R, O) of every existing round with a known ground truth."""
    gt = batch.gt_index.reshape(-1).to(scores.device)  # (B*R,)
    keep = batch.round_mask.reshape(-1).to(scores.device) & (gt >= 0)
    metrics.observe(scores.flatten(0, 1)[keep], gt[keep])


@torch.no_grad()
def retrieval_metrics(
    model, batches: Iterable[DialogBatch], device: torch.device, precision: str = "auto"
) -> dict:
    """MRR, R@1/5/10 and mean rank over every round with a known ground truth."""
    was_training = model.training
    model.eval()
    metrics = RetrievalMetrics()
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        with autocast(device, precision):
            scores = model.score_options(batch).float()  # (B, R, O)
        observe_rounds(metrics, scores, batch)
    model.train(was_training)
    return metrics.retrieve()


@torch.no_grad()
def scored_chunks(
    model,
    dataset: DialogDataset,
    batch_size: int,
    device: torch.device,
    precision: str,
    progress: bool,
    label: str,
) -> Iterator[tuple[np.ndarray, DialogBatch, torch.Tensor]]:
    """:func:`dialog_chunks` with the model's (B, R, O) float32 scores on the CPU, and a bar."""
    n_batches = -(-len(dataset) // batch_size)
    with progress_bar(n_batches, label, "batch", enabled=progress) as advance:
        for idx, batch in dialog_chunks(dataset, batch_size):
            with autocast(device, precision):
                scores = model.score_options(batch.to(device)).float().cpu()  # (B, R, O)
            yield idx, batch, scores
            advance(1)


def next_images(dataset: DialogDataset) -> DialogDataset:
    """Each dialog with the image of the next one (the last with the first's): every dialog
    sees another dialog's image, its text unchanged. Deterministic, no RNG."""
    return dataset.with_images_of(np.roll(np.arange(len(dataset)), -1))


@torch.no_grad()
def evaluate_split(
    model,
    dataset: DialogDataset,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    progress: bool = False,
    label: str = "evaluate",
    shuffled_images: bool = False,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Score every round with a ground truth: (metrics, per-round table).

    The table has one row per scored round, in (dialog, round) order: ``image_id``,
    ``round_id`` (1-based), the expected ``rank``, ``rr``, ``r1``, ``r5``, ``r10`` under random
    tie-breaking (:func:`~pipeline.evaluation.metrics.round_outcomes`) and, when the split has
    dense annotations (``dense_round`` / ``dense_relevance``), ``ndcg`` on the annotated round
    (NaN on the others). The metrics are the table's column means: ``mrr``, ``r@1``, ``r@5``,
    ``r@10`` (fractions in [0, 1]), ``mean_rank``, ``count`` (rows) and, with dense
    annotations, ``ndcg`` and ``ndcg_count`` (annotated rows).

    ``shuffled_images`` also scores every round with another dialog's image
    (:func:`next_images`): column ``rr_shuffled``, metric ``mrr_shuffled_images``. A model
    that uses the image ranks worse with the wrong one; one that answers from the text alone
    does not (``compare.image_use`` puts a CI on the difference).
    """
    model.eval()
    table = _round_table(model, dataset, batch_size, device, precision, progress, label)
    if shuffled_images and len(dataset) > 1:
        shuffled = _round_table(
            model, next_images(dataset), batch_size, device, precision, progress, f"{label} "
            "(shuffled images)", dense=False,
        )  # fmt: skip
        table["rr_shuffled"] = shuffled["rr"].to_numpy()  # same rounds, same order
    return metrics_of_rounds(table), table


def _round_table(
    model, dataset: DialogDataset, batch_size: int, device, precision: str, progress: bool,
    label: str, dense: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """The per-round table of :func:`evaluate_split` (``dense``: with NDCG where annotated)."""
    a = dataset.arrays
    dense = dense and "dense_round" in a and "dense_relevance" in a
    parts: list[pd.DataFrame] = []
    chunks = scored_chunks(model, dataset, batch_size, device, precision, progress, label)
    for idx, batch, scores in chunks:
        keep = batch.round_mask & (batch.gt_index >= 0)  # (B, R)
        b_idx, r_idx = keep.nonzero(as_tuple=True)  # rounds in (dialog, round) order
        outcomes = round_outcomes(scores[b_idx, r_idx], batch.gt_index[b_idx, r_idx])
        part = {"image_id": a["image_id"][idx][b_idx.numpy()], "round_id": r_idx.numpy() + 1}
        part |= {column: outcomes[column].numpy() for column in ROUND_COLUMNS}
        if dense:
            rnd = torch.from_numpy(a["dense_round"][idx].astype(np.int64))  # (B,)
            relevance = torch.from_numpy(a["dense_relevance"][idx].astype(np.float32))  # (B, O)
            annotated = rnd[b_idx] == r_idx  # (M,) the round each dialog's relevance is for
            ndcg = np.full(len(b_idx), np.nan)
            rows = annotated.nonzero().squeeze(1)
            ndcg[rows.numpy()] = ndcg_of_rounds(
                scores[b_idx[rows], r_idx[rows]], relevance[b_idx[rows]]
            ).numpy()
            part["ndcg"] = ndcg
        parts.append(pd.DataFrame(part))
    columns = ["image_id", "round_id", *ROUND_COLUMNS, *(["ndcg"] if dense else [])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def metrics_of_rounds(table: pd.DataFrame) -> dict[str, float]:
    """The metrics that are the column means of a per-round table (:func:`evaluate_split`)."""
    out: dict[str, float] = {
        metric: float(table[column].mean()) if len(table) else 0.0
        for column, metric in METRIC_OF_COLUMN.items()
    }
    out["count"] = len(table)
    if "ndcg" in table:
        annotated = table["ndcg"].dropna()
        out["ndcg"] = float(annotated.mean()) if len(annotated) else 0.0
        out["ndcg_count"] = len(annotated)
    if "rr_shuffled" in table:
        out["mrr_shuffled_images"] = float(table["rr_shuffled"].mean()) if len(table) else 0.0
    return out


@torch.no_grad()
def rank_challenge_split(
    model,
    dataset: DialogDataset,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    progress: bool = False,
) -> list[dict]:
    """VisDial evaluation-server ranks for every round that has its 100 options.

    ``ranks[i]`` is the 1-based rank of option i (1 = best); each list is a permutation of
    1..100, ties broken by option order (``ranks_of_options``).
    """
    model.eval()
    a = dataset.arrays
    if "has_options" not in a:
        raise InputError("challenge split lacks 'has_options' (re-run the prepare stage)")
    out: list[dict] = []
    chunks = scored_chunks(model, dataset, batch_size, device, precision, progress, "ranks")
    for idx, batch, scores in chunks:
        has = torch.from_numpy(a["has_options"][idx].astype(bool)) & batch.round_mask
        b_idx, r_idx = has.nonzero(as_tuple=True)  # rounds in (dialog, round) order
        ranks = ranks_of_options(scores[b_idx, r_idx])  # (M, O)
        image_ids = a["image_id"][idx]
        for b, r, row in zip(b_idx.tolist(), r_idx.tolist(), ranks.tolist(), strict=True):
            out.append({"image_id": int(image_ids[b]), "round_id": r + 1, "ranks": row})
    return out


def evaluate_model(
    checkpoint: str | Path,
    prepared: Path,
    features: Path,
    metrics_out: Path,
    ranks_out: Path,
    rounds_out: Path | None = None,
    *,
    batch_size: int = 16,
    device: str = "auto",
    precision: str = "fp32",
    shuffled_images: bool = True,
    progress: bool = True,
) -> dict[str, float]:
    """The ``evaluate`` stage for one checkpoint: the metrics of the **test** split (the
    reported one; model selection only ever read ``val``) to ``metrics_out`` (JSON), its
    per-round table (:func:`evaluate_split`) to ``rounds_out`` (CSV; the metrics are its column
    means), and the evaluation-server ranks of the ``challenge`` split (v1.0 test-std) to
    ``ranks_out`` (``[]`` when ``dialogs.h5`` has none)."""
    if batch_size < 1:
        raise InputError(f"evaluate.batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    autocast(dev, precision)  # validate before the slow part
    splits = splits_of(prepared / "dialogs.h5")
    model = load_model(checkpoint).to(dev)
    label = f"evaluate {Path(checkpoint).parent.name}"
    test = load_data(prepared, features, "test")
    metrics, rounds = evaluate_split(
        model, test, batch_size, dev, precision, progress, label, shuffled_images
    )
    ranks = []
    if "challenge" in splits:
        challenge = load_data(prepared, features, "challenge")
        ranks = rank_challenge_split(model, challenge, batch_size, dev, precision, progress)
    if rounds_out is not None:
        with atomic_path(rounds_out) as tmp:
            rounds.to_csv(tmp, index=False, float_format="%.17g")
    write_json(metrics_out, metrics)
    write_json(ranks_out, ranks, indent=None)
    return metrics

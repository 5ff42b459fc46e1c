"""Paired comparisons of two variants on the same test rounds: Δ, a 95 % CI, a p-value, a verdict.

The unit of resampling is the **dialog**: the rounds of one dialog share an image and a history,
so their outcomes are correlated, and resampling rounds would give CIs that are too narrow.
A metric over a set of dialogs is the ratio of sums Σ_d s_d / Σ_d n_d (s_d = the dialog's sum
of per-round values from ``predictions/<V>_test_rounds.csv``, n_d its number of scored rounds),
exactly the mean over rounds that ``metrics/<V>.json`` holds. For A − B:

* **CI**: percentile bootstrap over dialogs (``scipy.stats.bootstrap``; the same resampled
  dialogs for A and B, so it is paired), ``resamples`` draws seeded by ``seed``;
* **p**: a two-sided paired permutation test (``scipy.stats.permutation_test``, permutation type
  ``samples``: within each dialog A's and B's outcomes are swapped at random, i.e. the sign of
  the dialog's difference is flipped; two-sided = twice the smaller one-sided p, exact when
  ``resamples`` covers all 2^D sign patterns);
* **verdict** against the paper's A − B (``pipeline.evaluation.paper``): ``reproduced`` when the
  CI excludes 0 on the paper's side, ``contradicted`` when it excludes 0 on the other side,
  ``not significant`` when it contains 0 (``no paper number`` without one).

Diversity (Table 3): the same bootstrap over dialogs of set statistics (distinct answers,
distinct-2, generic share) of two models' answers to the same rounds (:func:`diversity_delta`),
bias-shifted (:func:`bootstrap_ci`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse, stats

from pipeline.errors import InputError
from pipeline.evaluation.metrics import METRIC_OF_COLUMN
from pipeline.evaluation.paper import LOWER_IS_BETTER, paper_delta

COLUMN_OF_METRIC = {metric: column for column, metric in METRIC_OF_COLUMN.items()} | {
    "ndcg": "ndcg"
}
METRICS = ("mrr", "r@1", "r@5", "r@10", "mean_rank", "ndcg")
KEYS = ("image_id", "round_id")


@dataclass(frozen=True)
class Resampling:
    """How many bootstrap / permutation draws, their seed, and the CI's level."""

    resamples: int = 10_000
    seed: int = 0
    level: float = 0.95


def read_rounds(path: Path) -> pd.DataFrame:
    """A ``predictions/<V>_test_rounds.csv``, checked."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (run the evaluate stage)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a rounds CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in (*KEYS, "rr") if c not in table]
    if missing:
        raise InputError(f"{path}: lacks column '{missing[0]}' (re-run the evaluate stage)")
    return table


def dialog_sums(image_ids, *values) -> tuple[np.ndarray, ...]:
    """Per-dialog sums of each of ``values`` (one number per round) and the rounds counted:
    ``(*sums, n)``, each (D,), dialogs in ascending image id. The one grouping every paired
    comparison and per-dialog CI uses (rounds of one dialog share its image id)."""
    ids, where = np.unique(np.asarray(image_ids), return_inverse=True)  # (D,), (N,)
    n = np.bincount(where, minlength=len(ids)).astype(float)
    sums = [np.bincount(where, np.asarray(v, float), minlength=len(ids)) for v in values]
    return (*sums, n)


def paired_dialogs(a: pd.DataFrame, b: pd.DataFrame, column: str, names=("A", "B")):
    """Per-dialog sums of ``column`` for A and B and the rounds they count: (s_a, s_b, n), (D,).

    A and B must have scored the same rounds (the same test split); rounds where ``column`` is
    NaN (NDCG off the annotated round) are left out.
    """
    if len(a) != len(b) or not (a[list(KEYS)].to_numpy() == b[list(KEYS)].to_numpy()).all():
        raise InputError(
            f"{names[0]} and {names[1]} were not scored on the same test rounds "
            f"({len(a)} vs {len(b)} rows; re-run their evaluate stages on one prepared split)"
        )
    joined = pd.DataFrame({"image_id": a["image_id"], "a": a[column], "b": b[column]}).dropna()
    return dialog_sums(joined["image_id"], joined["a"], joined["b"])


def bootstrap_ci(
    statistic: Callable[[np.ndarray], np.ndarray],
    n_dialogs: int,
    how: Resampling,
    shift_bias: bool = False,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of ``statistic(dialog_indices (..., D)) -> (...)`` over dialogs;
    ``(None, None)`` with fewer than 2 dialogs (no interval can be had).

    ``shift_bias``: for statistics that resampling with replacement biases (the number of
    distinct answers: a dialog drawn twice adds none), the bootstrap distribution is first moved
    by its bias, mean(θ*) − θ̂, so that it is centred on the estimate; on the demo the plain
    percentile interval of Δ distinct answers ([-12, +8]) did not even contain Δ = +9.
    """
    if n_dialogs < 2:
        return None, None
    result = stats.bootstrap(
        (np.arange(n_dialogs),),
        lambda idx, axis=-1: statistic(np.moveaxis(idx, axis, -1)),
        n_resamples=how.resamples,
        confidence_level=how.level,
        method="percentile",
        vectorized=True,
        batch=max(1, min(how.resamples, 2_000_000 // max(n_dialogs, 1))),
        rng=np.random.default_rng(how.seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if shift_bias:
        bias = float(np.mean(result.bootstrap_distribution) - statistic(np.arange(n_dialogs)))
        low, high = low - bias, high - bias
    return low, high


def paired_delta(s_a: np.ndarray, s_b: np.ndarray, n: np.ndarray, how: Resampling) -> dict:
    """Δ = mean_A − mean_B over the rounds, its bootstrap CI over dialogs and the permutation
    p-value: ``{"delta", "ci_low", "ci_high", "p", "dialogs", "rounds"}``."""
    total = n.sum()
    diff = s_a - s_b  # (D,)
    delta = float(diff.sum() / total)
    low, high = bootstrap_ci(lambda idx: diff[idx].sum(-1) / n[idx].sum(-1), len(n), how)
    if low is None:
        return {"delta": delta, "ci_low": None, "ci_high": None, "p": None,
                "dialogs": len(n), "rounds": int(total)}  # fmt: skip
    perm = stats.permutation_test(
        (s_a, s_b),
        lambda x, y, axis=-1: (x.sum(axis) - y.sum(axis)) / total,
        permutation_type="samples",
        n_resamples=how.resamples,
        vectorized=True,
        alternative="two-sided",
        rng=np.random.default_rng(how.seed + 1),
    )
    return {
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "p": float(perm.pvalue),
        "dialogs": len(n),
        "rounds": int(total),
    }


def verdict(low: float | None, high: float | None, paper: float | None) -> str:
    """``reproduced`` / ``contradicted`` / ``not significant`` / ``no paper number`` (module doc),
    ``too few dialogs`` without a CI.

    The sign of the paper's Δ is the claimed direction, whatever the metric (a claimed lower
    mean rank is a negative paper Δ).
    """
    if paper is None or paper == 0:
        return "no paper number"
    if low is None or high is None:
        return "too few dialogs"
    if low <= 0 <= high:
        return "not significant"
    return "reproduced" if (low > 0) == (paper > 0) else "contradicted"


def compare_pair(
    a: str, b: str, rounds: dict[str, pd.DataFrame], how: Resampling
) -> dict[str, dict]:
    """Every metric both tables have: :func:`paired_delta` + the paper's Δ and the verdict."""
    out = {}
    for metric in METRICS:
        column = COLUMN_OF_METRIC[metric]
        if column not in rounds[a] or column not in rounds[b]:
            continue
        s_a, s_b, n = paired_dialogs(rounds[a], rounds[b], column, (a, b))
        if not len(n):
            continue
        row = paired_delta(s_a, s_b, n, how)
        paper = paper_delta(a, b, metric)
        row["paper"] = paper
        row["verdict"] = verdict(row["ci_low"], row["ci_high"], paper)
        row["better"] = _better(row, metric)
        out[metric] = row
    return out


def _better(row: dict, metric: str) -> str:
    """Which side the CI says is better: ``A``, ``B`` or ``neither``."""
    if row["ci_low"] is None or row["ci_low"] <= 0 <= row["ci_high"]:
        return "neither"
    a_higher = row["ci_low"] > 0
    return "A" if a_higher != (metric in LOWER_IS_BETTER) else "B"


def pair_name(a: str, b: str) -> str:
    return f"{a}_vs_{b}"


def compare_variants(
    pairs: Sequence[Sequence[str]], predictions: Path, how: Resampling
) -> dict[str, dict]:
    """``{"<A>_vs_<B>": {metric: {...}}}`` for every pair whose two rounds CSVs exist; pairs
    with a missing file get ``{"missing": [variants]}``."""
    rounds: dict[str, pd.DataFrame] = {}
    out: dict[str, dict] = {}
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise InputError(f"params.yaml: compare.pairs[{i}] must be [A, B], got {list(pair)}")
        a, b = pair
        missing = [v for v in (a, b) if not (predictions / f"{v}_test_rounds.csv").is_file()]
        if missing:
            out[pair_name(a, b)] = {"missing": missing}
            continue
        for v in (a, b):
            if v not in rounds:
                rounds[v] = read_rounds(predictions / f"{v}_test_rounds.csv")
        out[pair_name(a, b)] = compare_pair(a, b, rounds, how)
    return out


# ---- does a model use the image? -----------------------------------------------------------
def image_verdict(low: float | None, high: float | None) -> str:
    """What the CI of MRR(own image) − MRR(another dialog's image) says."""
    if low is None or high is None:
        return "too few dialogs"
    if low > 0:
        return "uses the image"
    if high < 0:
        return "better with another image"
    return "no evidence it uses the image"


def image_use(predictions: Path, how: Resampling) -> dict[str, dict]:
    """For every ``<V>_test_rounds.csv`` with an ``rr_shuffled`` column (``evaluate`` with
    ``shuffled_images``): ``{V: {"mrr", "mrr_shuffled", "delta", "ci_low", "ci_high", "p",
    "verdict", ...}}``, the paired difference over dialogs (:func:`paired_delta`)."""
    out = {}
    for path in sorted(predictions.glob("*_test_rounds.csv")):
        table = read_rounds(path)
        if "rr_shuffled" not in table or not len(table):
            continue
        s_own, s_other, n = dialog_sums(table["image_id"], table["rr"], table["rr_shuffled"])
        row = paired_delta(s_own, s_other, n, how)
        row["mrr"] = float(s_own.sum() / n.sum())
        row["mrr_shuffled"] = float(s_other.sum() / n.sum())
        row["verdict"] = image_verdict(row["ci_low"], row["ci_high"])
        out[path.name.removesuffix("_test_rounds.csv")] = row
    return out


# ---- diversity (Table 3) -------------------------------------------------------------------
def _presence(items_per_dialog: Sequence[Sequence]) -> sparse.csr_matrix:
    """(D, U) sparse counts of each distinct item (answer, bigram) in each dialog."""
    index: dict = {}
    rows, cols = [], []
    for d, items in enumerate(items_per_dialog):
        for item in items:
            rows.append(d)
            cols.append(index.setdefault(item, len(index)))
    shape = (len(items_per_dialog), max(len(index), 1))
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def diversity_statistics(
    answers_per_dialog: Sequence[Sequence[tuple[str, ...]]], generic: set[tuple[str, ...]]
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Vectorised diversity statistics of a resample ``idx (..., D)`` of dialogs.

    ``distinct_answers`` = number of different answers among the resampled dialogs' answers
    (a dialog drawn twice adds nothing new), ``distinct_2`` = distinct bigrams / bigrams,
    ``generic`` = share of answers that are a generic phrase.
    """
    answers = _presence(answers_per_dialog)  # (D, U)
    bigrams = _presence(
        [[p for a in dialog for p in zip(a, a[1:], strict=False)] for dialog in answers_per_dialog]
    )  # (D, U2)
    n_answers = np.array([len(d) for d in answers_per_dialog], float)  # (D,)
    n_bigrams = np.asarray(bigrams.sum(1)).ravel()  # (D,)
    n_generic = np.array([sum(a in generic for a in d) for d in answers_per_dialog], float)

    def weights(idx: np.ndarray) -> np.ndarray:
        """(..., D) resampled dialog indices -> (K, D) draw counts, K = prod(...)."""
        flat = idx.reshape(-1, idx.shape[-1])  # (K, D)
        w = np.zeros((flat.shape[0], len(n_answers)))
        np.add.at(w, (np.arange(flat.shape[0])[:, None], flat), 1.0)
        return w

    def distinct(counts: sparse.csr_matrix, w: np.ndarray) -> np.ndarray:
        return (np.asarray(counts.T @ w.T).T > 0).sum(-1).astype(float)  # (K,)

    def statistic(fn):
        return lambda idx: fn(weights(idx)).reshape(idx.shape[:-1])

    return {
        "distinct_answers": statistic(lambda w: distinct(answers, w)),
        "distinct_2": statistic(lambda w: distinct(bigrams, w) / np.maximum(w @ n_bigrams, 1)),
        "generic": statistic(lambda w: (w @ n_generic) / np.maximum(w @ n_answers, 1)),
    }


def diversity_delta(
    a: Sequence[Sequence[tuple[str, ...]]],
    b: Sequence[Sequence[tuple[str, ...]]],
    generic: set[tuple[str, ...]],
    how: Resampling,
) -> dict[str, dict]:
    """A − B on each diversity statistic with a bootstrap CI over dialogs (the same dialogs for
    both): ``{stat: {"a", "b", "delta", "ci_low", "ci_high"}}``. ``a[d]`` = A's answers (token
    tuples) to dialog d's rounds."""
    if len(a) != len(b):
        raise InputError(f"diversity: {len(a)} vs {len(b)} dialogs (not the same rounds)")
    stat_a, stat_b = diversity_statistics(a, generic), diversity_statistics(b, generic)
    everything = np.arange(len(a))
    out = {}
    for name in stat_a:

        def delta(idx, name=name):
            return stat_a[name](idx) - stat_b[name](idx)

        low, high = bootstrap_ci(delta, len(a), how, shift_bias=True)
        va, vb = float(stat_a[name](everything)), float(stat_b[name](everything))
        out[name] = {"a": va, "b": vb, "delta": va - vb, "ci_low": low, "ci_high": high}
    return out

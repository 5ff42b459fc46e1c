"""Paired comparisons: Δ, the bootstrap CI over dialogs, the permutation p-value, the verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.evaluation.compare import (
    Resampling,
    compare_variants,
    diversity_delta,
    image_use,
    image_verdict,
    paired_delta,
    paired_dialogs,
    verdict,
)
from pipeline.evaluation.paper import PAPER, paper_delta

FAST = Resampling(resamples=4000, seed=0)


def rounds_table(rr: np.ndarray, rounds_per_dialog: int = 10) -> pd.DataFrame:
    """A per-round table with ``len(rr)`` rounds, ``rounds_per_dialog`` per dialog."""
    n = len(rr)
    return pd.DataFrame(
        {
            "image_id": np.arange(n) // rounds_per_dialog + 1,
            "round_id": np.arange(n) % rounds_per_dialog + 1,
            "rank": 1 / rr,
            "rr": rr,
            "r1": (rr == 1).astype(float),
            "r5": (rr >= 0.2).astype(float),
            "r10": (rr >= 0.1).astype(float),
        }
    )


def direct_bootstrap(a, b, dialog, resamples, seed):
    """The definition, by loops: resample dialogs, mean of A − B over their rounds."""
    rng = np.random.default_rng(seed)
    ids = np.unique(dialog)
    deltas = []
    for _ in range(resamples):
        pick = rng.choice(ids, size=len(ids), replace=True)
        rows = np.concatenate([np.flatnonzero(dialog == d) for d in pick])
        deltas.append(a[rows].mean() - b[rows].mean())
    return np.percentile(deltas, [2.5, 97.5])


def test_delta_and_ci_match_a_direct_bootstrap_over_dialogs():
    rng = np.random.default_rng(1)
    dialog_effect = np.repeat(rng.normal(0, 0.2, 30), 10)  # rounds of a dialog are correlated
    a = np.clip(0.5 + dialog_effect + rng.normal(0, 0.1, 300), 0.01, 1)
    b = np.clip(a - 0.03 + rng.normal(0, 0.05, 300), 0.01, 1)
    ta, tb = rounds_table(a), rounds_table(b)
    got = paired_delta(*paired_dialogs(ta, tb, "rr"), FAST)
    assert got["delta"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert (got["dialogs"], got["rounds"]) == (30, 300)
    low, high = direct_bootstrap(a, b, ta["image_id"].to_numpy(), 2000, 5)
    assert got["ci_low"] == pytest.approx(low, abs=0.004)
    assert got["ci_high"] == pytest.approx(high, abs=0.004)


def test_ci_resamples_dialogs_not_rounds():
    """Rounds that move together within a dialog widen the CI: a round bootstrap would not."""
    rng = np.random.default_rng(2)
    diff = np.repeat(rng.normal(0.0, 0.3, 20), 10)  # all 10 rounds of a dialog alike
    b = np.full(200, 0.5)
    got = paired_delta(*paired_dialogs(rounds_table(b + diff), rounds_table(b), "rr"), FAST)
    by_round = 1.96 * diff.std() / np.sqrt(200)
    by_dialog = 1.96 * diff.std() / np.sqrt(20)
    half = (got["ci_high"] - got["ci_low"]) / 2
    assert half == pytest.approx(by_dialog, rel=0.25)
    assert half > 2 * by_round


def test_permutation_p_value_is_a_sign_flip_by_dialog():
    """12 dialogs: 4096 sign patterns, few enough for scipy's exact test and for enumeration."""
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(0.03, 0.1, 12) * 64) / 64  # dyadic: every sum below is exact
    s_b = np.full(12, 5.0)
    n = rng.integers(5, 11, 12).astype(float)
    got = paired_delta(s_b + d, s_b, n, Resampling(resamples=10000, seed=4))
    signs = np.array([[1 - 2 * ((k >> i) & 1) for i in range(12)] for k in range(4096)], float)
    null = signs @ d / n.sum()  # (4096,) Δ under every flip of every dialog's difference
    t, eps = d.sum() / n.sum(), 1e-12
    direct = 2 * min((null >= t - eps).mean(), (null <= t + eps).mean())  # two-sided
    assert got["p"] == pytest.approx(direct, rel=1e-9)
    same = paired_delta(s_b, s_b, n, FAST)
    assert same["delta"] == 0 and same["p"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("low", "high", "paper", "expected"),
    [
        (0.01, 0.03, 0.008, "reproduced"),
        (-0.03, -0.01, 0.008, "contradicted"),
        (-0.01, 0.03, 0.008, "not significant"),
        (-3.0, -1.0, -1.78, "reproduced"),  # a lower mean rank, as claimed
        (1.0, 3.0, -1.78, "contradicted"),
        (0.01, 0.03, None, "no paper number"),
    ],
)
def test_verdicts(low, high, paper, expected):
    assert verdict(low, high, paper) == expected


def test_paper_numbers_are_the_tables():
    assert PAPER["hciae-g-dis"]["r@5"] == pytest.approx(0.6528)
    assert paper_delta("hciae-g-dis", "hciae-g-mle", "mrr") == pytest.approx(0.0081)
    assert paper_delta("hciae-g-dis", "hciae-g-mle", "mean_rank") == pytest.approx(-1.78)
    assert paper_delta("hciae-d-np-att", "hciae-d-gan1", "mrr") == pytest.approx(0.4045)
    assert paper_delta("hciae-g-dis", "nope", "mrr") is None


def test_compare_variants_writes_every_pair_and_names_missing_files(tmp_path):
    rng = np.random.default_rng(4)
    base = rng.uniform(0.05, 1, 200)
    rounds_table(np.clip(base + 0.2, 0, 1)).to_csv(tmp_path / "hciae-g-dis_test_rounds.csv")
    rounds_table(base).to_csv(tmp_path / "hciae-g-mle_test_rounds.csv", index=False)
    pairs = [("hciae-g-dis", "hciae-g-mle"), ("hciae-g-dis", "lf-g")]
    got = compare_variants(pairs, tmp_path, FAST)
    assert got["hciae-g-dis_vs_lf-g"] == {"missing": ["lf-g"]}
    mrr = got["hciae-g-dis_vs_hciae-g-mle"]["mrr"]
    assert mrr["verdict"] == "reproduced" and mrr["better"] == "A"
    assert mrr["paper"] == pytest.approx(0.0081)
    assert set(got["hciae-g-dis_vs_hciae-g-mle"]) == {"mrr", "r@1", "r@5", "r@10", "mean_rank"}
    json.dumps(got)  # JSON-serialisable as the stage writes it
    with pytest.raises(InputError, match=r"compare\.pairs\[0\]"):
        compare_variants([("a", "b", "c")], tmp_path, FAST)


def test_tables_of_other_rounds_are_refused(tmp_path):
    a = rounds_table(np.full(20, 0.5))
    b = rounds_table(np.full(30, 0.5))
    with pytest.raises(InputError, match="not scored on the same test rounds"):
        paired_dialogs(a, b, "rr", ("x", "y"))


def test_diversity_delta_counts_distinct_answers_of_resampled_dialogs():
    yes, no, red = ("yes",), ("no",), ("it's", "red")
    a = [[yes, red], [no, red], [red, red]]
    b = [[yes, yes], [yes, yes], [no, yes]]
    got = diversity_delta(a, b, {yes, no}, Resampling(resamples=2000, seed=0))
    assert (got["distinct_answers"]["a"], got["distinct_answers"]["b"]) == (3, 2)
    assert got["generic"]["a"] == pytest.approx(2 / 6) and got["generic"]["b"] == 1.0
    assert got["distinct_2"]["a"] == pytest.approx(1 / 4)  # ("it's", "red") four times
    assert got["generic"]["ci_high"] < 0  # A is never more generic, whatever dialogs are drawn
    assert got["distinct_answers"]["ci_low"] <= 1 <= got["distinct_answers"]["ci_high"]


@pytest.mark.parametrize(
    "low, high, expected",
    [(0.01, 0.03, "uses the image"), (-0.01, 0.02, "no evidence it uses the image"),
     (-0.03, -0.01, "better with another image"), (None, None, "too few dialogs")],
)  # fmt: skip
def test_image_verdicts(low, high, expected):
    assert image_verdict(low, high) == expected


def test_image_use_is_own_minus_shuffled_images_over_dialogs(tmp_path):
    rng = np.random.default_rng(3)
    rr = rng.choice([1.0, 0.5, 0.2, 0.1], size=400)
    looks = rounds_table(rr)
    looks["rr_shuffled"] = rr * 0.5  # worse with the wrong image
    blind = rounds_table(rr)
    blind["rr_shuffled"] = rr  # the same either way
    looks.to_csv(tmp_path / "looks_test_rounds.csv", index=False)
    blind.to_csv(tmp_path / "blind_test_rounds.csv", index=False)
    rounds_table(rr).to_csv(tmp_path / "old_test_rounds.csv", index=False)  # no ablation: left out
    used = image_use(tmp_path, FAST)
    assert list(used) == ["blind", "looks"]
    assert used["looks"]["delta"] == pytest.approx(0.5 * rr.mean())
    assert used["looks"]["mrr"] == pytest.approx(rr.mean())
    assert used["looks"]["mrr_shuffled"] == pytest.approx(0.5 * rr.mean())
    assert used["looks"]["verdict"] == "uses the image" and used["looks"]["ci_low"] > 0
    assert used["blind"]["delta"] == 0
    assert used["blind"]["verdict"] == "no evidence it uses the image"

"""Across seeds: runs read from `dvc exp show --json` (a real capture), mean ± std, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.evaluation.seeds import (
    majority,
    runs_from_exp_show,
    seeds_markdown,
    stability,
    summarize,
)
from stages.cli import app

EXP_SHOW = Path(__file__).parent / "data" / "exp_show.json"  # dvc 3.67 on a toy repo, seeds 1, 2


def test_runs_are_the_experiments_with_metrics_once_per_seed():
    runs = runs_from_exp_show(json.loads(EXP_SHOW.read_text()))
    # workspace (seed 2, the last applied experiment) and the 2 experiments; the baseline
    # commit has no metrics files: 2 distinct runs
    assert sorted(r["seeds"][0] for r in runs) == [1, 2]
    assert {r["metrics"]["a"]["mrr"] for r in runs} == {0.1, 0.2}


def test_summary_mean_std_and_verdict_counts():
    runs = [
        {"name": "x", "seeds": [0, 0, 0], "metrics": {"lf-g": {"mrr": 0.3, "r@5": 0.5}},
         "comparisons": {"a_vs_b": {"mrr": {"delta": 0.02, "verdict": "reproduced"}}}},
        {"name": "y", "seeds": [1, 1, 1], "metrics": {"lf-g": {"mrr": 0.5, "r@5": 0.7}},
         "comparisons": {"a_vs_b": {"mrr": {"delta": -0.01, "verdict": "not significant"}},
                         "c_vs_d": {"missing": ["c"]}}},
    ]  # fmt: skip
    got = summarize(runs)
    mrr = got["variants"]["lf-g"]["mrr"]
    assert mrr["mean"] == pytest.approx(0.4) and mrr["n"] == 2
    assert mrr["std"] == pytest.approx(0.1414213, rel=1e-5)  # sample std (n - 1)
    claim = got["claims"]["a_vs_b"]["mrr"]
    assert claim["mean"] == pytest.approx(0.005)
    assert (claim["reproduced"], claim["not significant"], claim["contradicted"]) == (1, 1, 0)
    text = seeds_markdown(got)
    assert "| lf-g | 0.4000 ± 0.1414 (2) | – | 60.00 ± 14.14 (2) |" in text
    assert "| a | b | mrr | 0.0050 ± 0.0212 (2) | 1 | 1 | 0 | – |" in text  # 1 of 2: no majority


@pytest.mark.parametrize(
    ("counts", "most"),
    [
        ({"n": 3, "reproduced": 2, "not significant": 1, "contradicted": 0}, "reproduced"),
        ({"n": 3, "reproduced": 1, "not significant": 1, "contradicted": 1}, None),
        ({"n": 2, "reproduced": 1, "not significant": 1, "contradicted": 0}, None),
        ({"n": 4, "reproduced": 0, "not significant": 1, "contradicted": 3}, "contradicted"),
        ({"n": 3, "reproduced": 2}, "reproduced"),  # a run without a verdict still counts in n
        ({"n": 0}, None),
    ],
)
def test_majority_is_more_than_half_of_the_runs(counts, most):
    assert majority(counts) == most


def test_stability_names_k_of_n_and_the_other_verdicts():
    counts = {"n": 3, "reproduced": 1, "not significant": 2, "contradicted": 0}
    assert stability("reproduced", counts) == "1 of 3 runs; 2 not significant"
    assert stability("not significant", counts) == "2 of 3 runs; 1 reproduced"
    assert stability("contradicted", counts) == "0 of 3 runs; 1 reproduced; 2 not significant"
    assert stability("reproduced", None) == "not in the seed runs"


def test_committed_seeds_md_is_what_the_committed_json_gives():
    from tests.conftest import REPO

    summary = json.loads((REPO / "report/seeds.json").read_text())
    assert seeds_markdown(summary) == (REPO / "report/seeds.md").read_text()


def test_cli_writes_markdown_and_json(tmp_path):
    out = tmp_path / "report" / "seeds.md"
    result = CliRunner().invoke(app, ["seeds", "--out", str(out), "--exp-show-json", str(EXP_SHOW)])
    assert result.exit_code == 0, result.output
    assert "# Across seeds" in out.read_text()
    assert json.loads(out.with_suffix(".json").read_text())["variants"]["a"]["mrr"]["n"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = CliRunner().invoke(app, ["seeds", "--out", str(out), "--exp-show-json", str(bad)])
    assert result.exit_code == 1 and "no experiment with metrics" in result.stderr

"""The report stage: diversity numbers, tables, samples, missing variants and models, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pipeline.config import ReportConfig
from pipeline.errors import InputError
from pipeline.evaluation.diversity import diversity
from pipeline.evaluation.report import (
    adversarial_table,
    build_report,
    check_adversarial,
    claims_section,
    image_use_section,
    load_seeds,
    metrics_table,
)
from stages.cli import app
from tests.evaluation.test_evaluate import save_tiny, vocab_size

CPU = torch.device("cpu")


def test_diversity_on_hand_made_answers():
    answers = [["yes"], ["yes"], ["no", "."], ["a", "red", "car"], ["a", "red", "bus"], []]
    got = diversity(answers, generic=("Yes", "no", "i can't tell"))
    assert got["answers"] == 6
    assert got["distinct_answers"] == 5 and got["distinct_share"] == pytest.approx(5 / 6)
    # unigrams: yes yes no . a red car a red bus -> 10 tokens, 7 distinct
    assert got["distinct_1"] == pytest.approx(7 / 10)
    # bigrams: (no .) (a red) (red car) (a red) (red bus) -> 5, 4 distinct
    assert got["distinct_2"] == pytest.approx(4 / 5)
    assert got["generic"] == pytest.approx(3 / 6)  # yes, yes, "no ." (final punctuation)
    assert got["mean_length"] == pytest.approx(10 / 6)
    assert diversity([], ())["distinct_1"] == 0.0


def test_generic_phrases_are_tokenized():
    assert diversity([["i", "can't", "tell"]], generic=("I can't tell.",))["generic"] == 1.0
    assert diversity([["no", ",", "it", "is", "red"]], generic=("no",))["generic"] == 0.0


def test_tables_print_percent_and_missing_rows():
    metrics = {"a-g": {"mrr": 0.54667, "r@1": 0.4435, "r@5": 0.6528, "r@10": 0.7155,
                       "mean_rank": 14.234}, "b-g": None}  # fmt: skip
    keys = ("mrr", "r@1", "r@5", "r@10", "mean_rank")
    table = metrics_table(metrics, ["a-g", "b-g"], keys).splitlines()
    assert table[2] == "| a-g | 0.5467 | 44.35 | 65.28 | 71.55 | 14.23 |"
    assert table[3].startswith("| b-g | not evaluated |")
    row = adversarial_table(metrics, {"X": ["b-g", "a-g"]}, keys).splitlines()[2]
    assert row == "| X | b-g | a-g | – | – | – | – | – | 0.5467 | 44.35 | 65.28 | 71.55 | 14.23 |"
    with pytest.raises(InputError, match="report.adversarial.X"):
        check_adversarial({"X": ["only-one"]})


def _metrics_dir(root: Path) -> Path:
    (root / "metrics").mkdir(parents=True)
    m = {"mrr": 0.5, "r@1": 0.4, "r@5": 0.6, "r@10": 0.7, "mean_rank": 15.0, "count": 40}
    (root / "metrics/hciae-g-mle.json").write_text(json.dumps(m))
    (root / "metrics/lf-d.json").write_text(json.dumps(m | {"r@5": 0.8}))
    return root / "metrics"


def _build(tiny_data, root: Path, **cfg) -> dict:
    prepared, features = tiny_data
    return build_report(
        ReportConfig(samples=3, batch_size=3, **cfg), prepared=prepared, features=features,
        models_dir=root / "models", metrics_dir=root / "metrics", live_dir=root / "live",
        out_dir=root / "report", device=CPU, progress=False,
    )  # fmt: skip


def test_report_renders_with_missing_variants_and_g_dis(tiny_data, tmp_path):
    _metrics_dir(tmp_path)
    save_tiny(tmp_path / "models/hciae-g-mle/best.pt", "hciae-g-mle", vocab_size(tiny_data[0]))
    result = _build(tiny_data, tmp_path)
    assert result["missing_models"] == ["hciae-g-dis"]
    assert "hciae-g-dis" in result["missing_metrics"] and "lf-d" not in result["missing_metrics"]
    text = (tmp_path / "report/README.md").read_text()
    assert "`models/hciae-g-dis/best.pt` not found" in text
    assert "| hciae-g-dis | not evaluated |" in text
    assert "| lf-d | 0.5000 | 40.00 | 80.00 | 70.00 | 15.00 |" in text
    samples = json.loads((tmp_path / "report/samples.json").read_text())
    assert len(samples) == 3 and all("g_mle" in s and "g_dis" not in s for s in samples)
    div = json.loads((tmp_path / "report/diversity.json").read_text())
    assert set(div) == {"human", "g_mle_greedy", "g_mle_sample"}
    assert div["human"]["answers"] == 40  # 4 val dialogs x 10 rounds
    for png in ("metrics.png", "diversity.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_report_with_g_dis_is_deterministic(tiny_data, tmp_path):
    _metrics_dir(tmp_path)
    n = vocab_size(tiny_data[0])
    save_tiny(tmp_path / "models/hciae-g-mle/best.pt", "hciae-g-mle", n)
    save_tiny(tmp_path / "models/hciae-g-dis/best.pt", "hciae-g-mle", n, variant="hciae-g-dis")
    (tmp_path / "live/lf-d").mkdir(parents=True)
    (tmp_path / "live/lf-d/curves.png").write_bytes(b"\x89PNG fake")
    result = _build(tiny_data, tmp_path)
    assert result["missing_models"] == []
    first = (tmp_path / "report/samples.json").read_text()
    samples = json.loads(first)
    assert all(len(s["g_dis"]) == 3 for s in samples)
    # the three noises give different draws somewhere (an untrained G is near uniform)
    assert any(len(set(s["g_dis"])) > 1 for s in samples)
    text = (tmp_path / "report/README.md").read_text()
    assert "![lf-d training curves](../live/lf-d/curves.png)" in text
    assert "- G-DIS (z3):" in text
    _build(tiny_data, tmp_path)
    assert (tmp_path / "report/samples.json").read_text() == first


PATHS = ["--models", "models", "--metrics", "metrics", "--live", "live",
         "--prepared", "data/prepared", "--features", "data/features",
         "--out", "report"]  # fmt: skip


def test_cli_report_without_prepared_data_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", *PATHS])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: data/prepared/vocab.json: vocabulary file not found"


def test_cli_report_notes_missing_pieces(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepared, features = tiny_data
    args = ["report", *PATHS[:6], "--prepared", str(prepared), "--features", str(features),
            "--out", "report"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "missing models: hciae-g-mle, hciae-g-dis" in result.stdout
    assert (tmp_path / "report/README.md").is_file()


def test_selected_epochs_come_from_best_and_last(tmp_path):
    import torch

    from pipeline.evaluation.report import selected_epochs

    (tmp_path / "a-g").mkdir()
    rows = [{"epoch": i + 1, "val_mrr": 0.1} for i in range(5)]
    for name, epoch in (("best.pt", 2), ("last.pt", 4)):
        state = {"model": {}, "meta": {}, "epoch": epoch, "history": rows[: epoch + 1]}
        torch.save(state, tmp_path / "a-g" / name)
    assert selected_epochs(tmp_path, ["a-g", "missing-g"]) == {"a-g": (3, 5)}


def test_deltas_and_the_claims_table_are_re_derived_from_the_files(tiny_data, tmp_path):
    metrics = _metrics_dir(tmp_path)
    dis = {"mrr": 0.55, "r@1": 0.41, "r@5": 0.7, "r@10": 0.72, "mean_rank": 14.0, "count": 40}
    (metrics / "hciae-g-dis.json").write_text(json.dumps(dis))
    claims = {
        "hciae-g-dis_vs_hciae-g-mle": {
            m: {
                "delta": d,
                "ci_low": d - 0.01,
                "ci_high": d + 0.01,
                "p": 0.01,
                "paper": pd_,
                "verdict": v,
            }
            for m, d, pd_, v in (
                ("mrr", 0.05, 0.0081, "reproduced"),
                ("r@5", 0.1, 0.0173, "reproduced"),
                ("mean_rank", -1.0, -1.78, "reproduced"),
            )
        },  # fmt: skip
        "hciae-g-mle_vs_lf-g": {"missing": ["lf-g"]},
    }
    (tmp_path / "comparisons.json").write_text(json.dumps(claims))
    seeds = {"runs": [{"name": "s0", "seeds": [0, 0, 0]}, {"name": "s1", "seeds": [1, 1, 1]}],
             "claims": {"hciae-g-dis_vs_hciae-g-mle": {"mrr": _counts(1, 1, 0)}}}  # fmt: skip
    (tmp_path / "seeds.json").write_text(json.dumps(seeds))
    prepared, features = tiny_data
    build_report(
        ReportConfig(samples=2, batch_size=3), prepared=prepared, features=features,
        models_dir=tmp_path / "models", metrics_dir=metrics, live_dir=tmp_path / "live",
        out_dir=tmp_path / "report", device=CPU, progress=False,
        comparisons=tmp_path / "comparisons.json", seeds=tmp_path / "seeds.json",
    )  # fmt: skip
    text = (tmp_path / "report/README.md").read_text()
    # G-DIS − G-MLE from the metrics files: R@5 0.7 − 0.6, MRR 0.55 − 0.5
    assert "hciae-g-dis − hciae-g-mle: R@5 +10.00 points, MRR +0.0500" in text
    lines = text.splitlines()
    assert lines.index("## Claims of the paper on this data") < lines.index(
        "## Table 1: generative models"
    )  # the claims open the report
    row = next(line for line in lines if line.startswith("| hciae-g-dis | hciae-g-mle |"))
    assert "+0.0081 / +0.0500 [+0.0400, +0.0600] / **reproduced** (1 of 2 runs; 1 not " in row
    assert "+1.73 / +10.00 [+9.00, +11.00] / **reproduced** (not in the seed runs)" in row
    assert "-1.78 / -1.00 [-1.01, -0.99] / **reproduced**" in row
    assert "| hciae-g-mle | lf-g | not evaluated: lf-g |" in text
    assert "**reproduced in most runs: 0** — none;" in text  # 1 of 2 is not most


def _counts(reproduced: int, not_significant: int, contradicted: int) -> dict:
    """A claim metric of ``report/seeds.json``: Δ stats and a count per verdict."""
    n = reproduced + not_significant + contradicted
    return {"mean": 0.01, "std": 0.01, "n": n, "reproduced": reproduced,
            "not significant": not_significant, "contradicted": contradicted}  # fmt: skip


def _claim(verdicts: dict[str, str]) -> dict:
    return {m: {"delta": 0.02, "ci_low": 0.01, "ci_high": 0.03, "p": 0.01, "paper": 0.01,
                "verdict": v} for m, v in verdicts.items()}  # fmt: skip


CLAIMS = {
    "a-g_vs_b-g": _claim({"mrr": "reproduced", "r@5": "reproduced", "mean_rank": "reproduced"}),
    "c-d_vs_d-d": _claim({"mrr": "not significant", "r@5": "reproduced"}),
    "e-d_vs_f-d": {"missing": ["f-d"]},
}
SEEDS = {
    "runs": [{"name": n, "seeds": [i, i, i]} for i, n in enumerate(("workspace", "x", "y"))],
    "claims": {
        "a-g_vs_b-g": {"mrr": _counts(3, 0, 0), "r@5": _counts(1, 2, 0),
                       "mean_rank": _counts(2, 0, 1)},
        "c-d_vs_d-d": {"mrr": _counts(2, 1, 0), "r@5": _counts(1, 1, 1)},
    },
}  # fmt: skip


def test_each_verdict_carries_its_k_of_n_seed_runs():
    lines = claims_section(CLAIMS, SEEDS)
    row = next(line for line in lines if line.startswith("| a-g | b-g |"))
    assert "**reproduced** (3 of 3 runs) |" in row  # MRR
    assert "**reproduced** (1 of 3 runs; 2 not significant) |" in row  # R@5
    assert "**reproduced** (2 of 3 runs; 1 contradicted) |" in row  # mean rank
    row = next(line for line in lines if line.startswith("| c-d | d-d |"))
    assert "**not significant** (1 of 3 runs; 2 reproduced) |" in row
    assert "**reproduced** (1 of 3 runs; 1 not significant; 1 contradicted) |" in row
    assert row.endswith("| – |")  # no mean rank in this run
    text = "\n".join(lines)
    assert "n = 3: workspace (0, 0, 0), x (1, 1, 1), y (2, 2, 2)" in text
    assert "A single run's CI covers test-set sampling only" in text


def test_the_summary_calls_reproduced_only_what_most_runs_reproduced():
    """This run reproduces 4 claim metrics; most seed runs reproduce 3 of them (a−b MRR and
    mean rank, c−d MRR, which this run calls not significant)."""
    (summary,) = [line for line in claims_section(CLAIMS, SEEDS) if line.startswith("**Summary")]
    assert "(5 claim metrics, 3 seed runs)" in summary
    assert "**reproduced in most runs: 3** — a-g − b-g (MRR, Mean); c-d − d-d (MRR);" in summary
    assert (
        "not significant in most runs: 1;" in summary and "contradicted in most runs: 0" in summary
    )
    assert "no verdict in most runs (or not in the seed runs): 1." in summary
    assert "This run alone: 4 reproduced, 1 not significant, 0 contradicted." in summary


def test_without_seeds_the_table_says_seeds_not_run():
    text = "\n".join(claims_section(CLAIMS, None))
    assert "**seeds not run**" in text and "runs)" not in text
    assert "seeds not run, so no claim is called reproduced across runs; this run alone: 4 " in text


def test_load_seeds_reads_the_committed_file_and_refuses_another(tmp_path):
    from tests.conftest import REPO

    assert load_seeds(tmp_path / "absent.json") is None and load_seeds(None) is None
    committed = load_seeds(REPO / "report/seeds.json")
    assert committed["claims"] and all("n" in m for c in committed["claims"].values()
                                       for m in c.values())  # fmt: skip
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(InputError, match="bad.json: not the JSON of visdial seeds"):
        load_seeds(tmp_path / "bad.json")


def test_image_use_table_follows_the_tables_order_and_says_who_uses_the_image():
    def row(delta, verdict):
        return {"mrr": 0.3 + delta, "mrr_shuffled": 0.3, "delta": delta, "ci_low": delta - 0.01,
                "ci_high": delta + 0.01, "verdict": verdict}  # fmt: skip

    used = {"zz-extra": row(0.0, "no evidence it uses the image"),
            "hciae-d-np-att": row(0.02, "uses the image"),
            "lf-g": row(0.0, "no evidence it uses the image")}  # fmt: skip
    md = image_use_section(used, ["lf-g", "hciae-g-mle", "hciae-d-np-att"])
    names = [line.split(" | ")[0].strip("| ") for line in md if line.startswith("| ")][2:]
    assert names == ["lf-g", "hciae-d-np-att", "zz-extra"]  # table order, then the rest
    assert "| hciae-d-np-att | 0.3200 | 0.3000 | +0.0200 [+0.0100, +0.0300] |" in "\n".join(md)
    assert md[-2] == "1 of 3 models use the image detectably."

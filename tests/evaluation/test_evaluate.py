"""The evaluate stage: metrics on hand-made scores, NDCG, v1.0 test ranks, files and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from pipeline.config import MaxLen, ModelConfig
from pipeline.data.dataset import DialogDataset, batches, load_split
from pipeline.data.feature_reader import FeatureReader
from pipeline.data.loaders import load_data
from pipeline.data.prepare import prepare
from pipeline.data.visdial import read_visdial
from pipeline.evaluation.evaluate import (
    evaluate_model,
    evaluate_split,
    rank_challenge_split,
    retrieval_metrics,
)
from pipeline.models.variants import build_model, model_meta
from stages.cli import app
from tests.conftest import visdial_doc

CPU = torch.device("cpu")
KEYS = {"mrr", "r@1", "r@5", "r@10", "mean_rank", "count"}


class FixedScores(torch.nn.Module):
    """Scores option o of every round as ``-o`` (option 0 best), or all equal."""

    def __init__(self, equal: bool = False):
        super().__init__()
        self.equal = equal

    def score_options(self, batch):
        b, r, o, _ = batch.options.shape
        scores = torch.zeros(o) if self.equal else -torch.arange(o, dtype=torch.float32)
        return scores.expand(b, r, o)  # (B, R, O)


def save_tiny(path: Path, arch: str, vocab_size: int, variant: str | None = None) -> Path:
    torch.manual_seed(0)
    model = build_model(arch, vocab_size, ModelConfig(embed_dim=8, hidden=16, dropout=0.0))
    meta = model_meta(model, vocab_size) | {"variant": variant or arch}
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "meta": meta, "epoch": 0, "history": [], "best": 0.0}
    torch.save(state, path)
    return path


def vocab_size(prepared: Path) -> int:
    with h5py.File(prepared / "dialogs.h5", "r") as h5:
        return int(h5.attrs["vocab_size"])


def test_metrics_on_hand_made_scores_are_exact(tiny_data):
    prepared, features = tiny_data
    val = load_data(prepared, features, "val")
    gt = val.arrays["gt_index"].reshape(-1).astype(np.float64)
    rank = gt + 1  # option o scores -o: the ground truth at position g has rank g + 1
    got, rounds = evaluate_split(FixedScores(), val, batch_size=3, device=CPU)
    assert set(got) == KEYS and got["count"] == len(gt) == 40
    assert got["mean_rank"] == pytest.approx(rank.mean())
    assert got["mrr"] == pytest.approx((1 / rank).mean())
    for k in (1, 5, 10):
        assert got[f"r@{k}"] == pytest.approx((rank <= k).mean())
    assert 0 < got["r@10"] < 1  # the demo's ground truths are spread over positions
    # one row per round, in (dialog, round) order, with the hand-made rank
    assert list(rounds.columns) == ["image_id", "round_id", "rank", "rr", "r1", "r5", "r10"]
    assert rounds["rank"].tolist() == rank.tolist()
    assert rounds["round_id"].tolist() == [r + 1 for _ in range(4) for r in range(10)]
    assert rounds["image_id"].tolist() == np.repeat(val.arrays["image_id"], 10).tolist()
    assert rounds["r5"].tolist() == (rank <= 5).astype(float).tolist()


def test_all_equal_scores_give_chance_level(tiny_data):
    val = load_data(*tiny_data, "val")
    got, _ = evaluate_split(FixedScores(equal=True), val, batch_size=4, device=CPU)
    assert got["mean_rank"] == pytest.approx(50.5)
    assert got["r@1"] == pytest.approx(0.01) and got["r@10"] == pytest.approx(0.10)
    assert got["mrr"] == pytest.approx(sum(1 / r for r in range(1, 101)) / 100)


IDEAL = 1 + 0.5 / math.log2(3)  # relevances 1 and 0.5 in the best order, k = 2


@pytest.mark.parametrize(
    ("relevant", "dcg"),
    [((0, 1), IDEAL), ((1, 0), 0.5 + 1 / math.log2(3)), ((0, 2), 1.0), ((98, 99), 0.0)],
)
def test_ndcg_with_dense_annotations(tiny_data, relevant, dcg):
    """Relevance 1 on option relevant[0], 0.5 on relevant[1]; the model's top 2 are options 0, 1."""
    prepared, features = tiny_data
    arrays = load_split(prepared / "dialogs.h5", "val")
    n = len(arrays["image_id"])
    arrays["dense_round"] = np.array([3, -1, 0, 9][:n], np.int32)  # dialog 1: not annotated
    arrays["dense_relevance"] = np.zeros((n, 100), np.float32)
    arrays["dense_relevance"][:, list(relevant)] = [1.0, 0.5]
    val = DialogDataset(arrays, FeatureReader(features / "val.h5"))
    got, rounds = evaluate_split(FixedScores(), val, batch_size=2, device=CPU)
    assert set(got) == KEYS | {"ndcg", "ndcg_count"}
    assert got["ndcg_count"] == 3
    assert got["ndcg"] == pytest.approx(dcg / IDEAL)
    # the per-round column holds it on the annotated round (1-based 4, 1, 10) only
    annotated = rounds.dropna(subset=["ndcg"])
    assert annotated["round_id"].tolist() == [4, 1, 10][: len(annotated)]
    assert annotated["ndcg"].tolist() == pytest.approx([dcg / IDEAL] * len(annotated))


def test_metrics_file_matches_trainer_validation(tiny_data, tmp_path):
    prepared, features = tiny_data
    ckpt = save_tiny(tmp_path / "models/hciae-d-np-att/best.pt", "hciae-d-np-att",
                     vocab_size(prepared))  # fmt: skip
    out, ranks_out = tmp_path / "metrics/x.json", tmp_path / "predictions/x_ranks.json"
    rounds_out = tmp_path / "predictions/x_test_rounds.csv"
    got = evaluate_model(
        ckpt, prepared, features, out, ranks_out, rounds_out, batch_size=3, progress=False
    )
    assert json.loads(out.read_text()) == got and set(got) == KEYS | {"mrr_shuffled_images"}
    rounds = pd.read_csv(rounds_out)  # the metrics are exactly its column means
    assert len(rounds) == got["count"]
    means = {"mrr": "rr", "mean_rank": "rank", "r@1": "r1", "r@5": "r5", "r@10": "r10",
             "mrr_shuffled_images": "rr_shuffled"}  # fmt: skip
    for metric, column in means.items():
        assert rounds[column].mean() == pytest.approx(got[metric], rel=1e-12), metric
    assert json.loads(ranks_out.read_text()) == []  # no challenge split
    from pipeline.models.checkpoint import load_model

    model = load_model(ckpt)
    loader = batches(load_data(prepared, features, "test"), 4, shuffle=False)  # the reported one
    plain = {k: v for k, v in got.items() if k != "mrr_shuffled_images"}
    assert retrieval_metrics(model, loader, CPU) == pytest.approx(plain)
    val = retrieval_metrics(
        model, batches(load_data(prepared, features, "val"), 4, shuffle=False), CPU
    )
    assert val != pytest.approx(plain)


@pytest.fixture(scope="module")
def v1_test_data(tmp_path_factory):
    """prepared + features with a v1.0-test-style split: 3 and 2 rounds, last with options."""
    root = tmp_path_factory.mktemp("v1test")
    dialogs = [("a cat", [("is it big", "yes"), ("color", "black")])] * 2
    test_doc = visdial_doc(
        [("a dog", [("q1", "yes"), ("q2", "no"), ("q3", "black")]), ("a cat", [("q1", "no"),
         ("q2", "yes")])], "1.0", "test2018",
    )  # fmt: skip
    for dialog in test_doc["data"]["dialogs"]:
        dialog["image_id"] += 50
        for rnd in dialog["dialog"][:-1]:
            del rnd["answer_options"], rnd["gt_index"]
        del dialog["dialog"][-1]["answer"], dialog["dialog"][-1]["gt_index"]
    files = {}
    for split, doc in (("train", visdial_doc(dialogs)), ("val", visdial_doc(dialogs)),
                       ("test", visdial_doc(dialogs)), ("challenge", test_doc)):  # fmt: skip
        (root / f"{split}.json").write_text(json.dumps(doc))
        files[split] = read_visdial(root / f"{split}.json")
    prepare(files, root / "prepared", min_count=1, max_len=MaxLen(), allow_overlap=True)
    (root / "features").mkdir()
    for split, file in files.items():
        with h5py.File(root / "features" / f"{split}.h5", "w") as h5:
            h5["image_id"] = file.image_id
            h5["features"] = np.zeros((len(file), 512, 7, 7), np.float16)
    return root / "prepared", root / "features"


def test_challenge_split_ranks_in_server_format(v1_test_data, tmp_path):
    prepared, features = v1_test_data
    challenge = load_data(prepared, features, "challenge")
    got = rank_challenge_split(FixedScores(), challenge, batch_size=1, device=CPU)
    assert [(x["image_id"], x["round_id"]) for x in got] == [(150, 3), (151, 2)]
    assert all(x["ranks"] == list(range(1, 101)) for x in got)  # option o scores -o

    ckpt = save_tiny(tmp_path / "g.pt", "hciae-g-mle", vocab_size(prepared))
    ranks_out = tmp_path / "ranks.json"
    evaluate_model(ckpt, prepared, features, tmp_path / "m.json", ranks_out, progress=False)
    written = json.loads(ranks_out.read_text())
    assert [set(x) for x in written] == [{"image_id", "round_id", "ranks"}] * 2
    assert all(sorted(x["ranks"]) == list(range(1, 101)) for x in written)


def test_cli_missing_model_is_one_line_error(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepared, features = tiny_data
    args = ["evaluate", "--model", "models/nope-g/best.pt", "--prepared", str(prepared),
            "--features", str(features), "--metrics", "metrics/nope-g.json",
            "--ranks", "predictions/nope-g.json", "--rounds", "predictions/nope-g.csv"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "error: models/nope-g/best.pt: checkpoint not found (train the model first)"
    )  # noqa: E501
    assert not (tmp_path / "metrics").exists()


def test_cli_writes_metrics_and_ranks(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepared, features = tiny_data
    save_tiny(tmp_path / "models/lf-g/best.pt", "lf-g", vocab_size(prepared))
    args = ["evaluate", "--model", "models/lf-g/best.pt", "--prepared", str(prepared),
            "--features", str(features), "--metrics", "metrics/lf-g.json",
            "--ranks", "predictions/lf-g_challenge_ranks.json",
            "--rounds", "predictions/lf-g_test_rounds.csv"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics/lf-g.json").read_text())
    rounds = pd.read_csv(tmp_path / "predictions/lf-g_test_rounds.csv")
    assert metrics["count"] == len(rounds) == 40  # the 4 test dialogs' 10 rounds, not val's
    assert set(rounds["image_id"]) == set(load_split(prepared / "dialogs.h5", "test")["image_id"])
    assert metrics["mrr"] == pytest.approx(rounds["rr"].mean(), rel=1e-12)
    assert 1 <= metrics["mean_rank"] <= 100 and 0 < metrics["mrr"] <= 1
    assert (tmp_path / "predictions/lf-g_challenge_ranks.json").read_text().strip() == "[]"


class RotatedScores(torch.nn.Module):
    """Round r ranks option (r + j) % O at place j: every round orders the options differently."""

    def score_options(self, batch):
        b, r, o, _ = batch.options.shape
        rounds = torch.arange(r).view(r, 1)
        places = (torch.arange(o).view(1, o) - rounds) % o  # (R, O) place of each option
        return (-places.float()).expand(b, r, o)  # (B, R, O)


def test_ndcg_is_scored_on_the_annotated_round(tiny_data):
    """Relevance 1 on options 0..9 (so NDCG@10); dialog d is annotated at round k_d. Under
    RotatedScores round k's top 10 are options k..k+9, of which 10 - k are relevant, at places
    0..9-k: NDCG = sum_{p<10-k} 1/log2(p+2) / sum_{p<10} 1/log2(p+2)."""
    prepared, features = tiny_data
    arrays = load_split(prepared / "dialogs.h5", "val")
    n = len(arrays["image_id"])
    annotated = [3, 7, 1, 0][:n]
    arrays["dense_round"] = np.array(annotated, np.int32)
    arrays["dense_relevance"] = np.zeros((n, 100), np.float32)
    arrays["dense_relevance"][:, :10] = 1.0
    val = DialogDataset(arrays, FeatureReader(features / "val.h5"))
    got, rounds = evaluate_split(RotatedScores(), val, batch_size=3, device=CPU)
    ideal = sum(1 / math.log2(p + 2) for p in range(10))
    want = [sum(1 / math.log2(p + 2) for p in range(10 - k)) / ideal for k in annotated]
    assert got["ndcg"] == pytest.approx(sum(want) / len(want))
    assert rounds.dropna(subset=["ndcg"])["ndcg"].tolist() == pytest.approx(want)


def test_shuffled_images_score_each_dialog_with_the_next_dialogs_image(tiny_data):
    """``rr_shuffled`` is the reciprocal rank with dialog i+1's image (a direct computation);
    a model whose image embedding is constant gets exactly its own ``rr`` back."""
    import dataclasses

    from pipeline.evaluation.metrics import round_outcomes

    prepared, features = tiny_data
    test = load_data(prepared, features, "test")
    torch.manual_seed(0)
    model = build_model("hciae-g-mle", vocab_size(prepared), ModelConfig(8, 16, 0.0, "none")).eval()
    metrics, table = evaluate_split(model, test, 3, CPU, shuffled_images=True)
    assert metrics["mrr_shuffled_images"] == pytest.approx(table["rr_shuffled"].mean())
    n = len(test)
    for i in range(n):
        batch = test[[i]]
        other = dataclasses.replace(batch, image=test[[(i + 1) % n]].image)
        with torch.no_grad():
            scores = model.score_options(other)[0]  # (R, O)
        keep = (batch.round_mask[0] & (batch.gt_index[0] >= 0)).nonzero().squeeze(1)
        rr = round_outcomes(scores[keep], batch.gt_index[0, keep])["rr"].numpy()
        rows = table["image_id"] == int(test.arrays["image_id"][i])
        np.testing.assert_allclose(table.loc[rows, "rr_shuffled"].to_numpy(), rr, rtol=1e-12)
    assert not np.allclose(table["rr"], table["rr_shuffled"])  # random weights look at images
    with torch.no_grad():
        model.encoder.image_embed.linear.weight.zero_()  # every region embeds alike
    _, blind = evaluate_split(model, test, 3, CPU, shuffled_images=True)
    np.testing.assert_array_equal(blind["rr"].to_numpy(), blind["rr_shuffled"].to_numpy())
    plain, table = evaluate_split(model, test, 3, CPU)
    assert "rr_shuffled" not in table and "mrr_shuffled_images" not in plain

"""Smoke tests: every benchmark's ``main`` runs on minimal sizes and prints its ratio lines.

Nothing here is timed; the point is that the benchmarks keep working as the library changes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from pipeline.runtime import cpu_has_bf16

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_synthetic_batch_is_consistent():
    synthetic = load("synthetic")
    batch = synthetic.synthetic_batch(3, vocab=50, popular=30, seed=1)
    b, r, o, la = batch.options.shape
    assert (b, r, o, la) == (3, 10, 100, 8)
    gt = batch.options.gather(2, batch.gt_index[..., None, None].expand(-1, -1, 1, la))
    assert torch.equal(gt.squeeze(2), batch.answer)  # the answer is the gt option
    steps = torch.arange(la)
    assert not (batch.options * (steps >= batch.options_len.unsqueeze(-1))).any()  # padded
    assert (batch.options_len >= 1).all() and (batch.question_len >= 3).all()
    rows = batch.options.reshape(-1, la)
    assert len(torch.unique(rows, dim=0)) < 0.8 * len(rows)  # popular answers repeat


def test_reference_port_pieces():
    train = load("train")
    tokens = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 0]])
    aligned = train.right_align(tokens, torch.tensor([2, 3]))
    assert aligned.tolist() == [[0, 0, 5, 6], [0, 7, 8, 9]]
    out = torch.zeros(4, 3, dtype=torch.long)
    neg_ids = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    train.sample_batch_neg(torch.tensor([1, 4, 5, 8]), neg_ids, out, 3)
    picked = neg_ids.reshape(-1)[out]  # (4, 3) global answer ids of the in-batch negatives
    assert not (picked == torch.tensor([1, 4, 5, 8]).unsqueeze(1)).any()


def test_train_benchmark_prints_ratios(capsys):
    train = load("train")
    precision = "bf16" if cpu_has_bf16() else "fp32"  # bf16 needs AVX512-BF16 or AMX
    args = ["--batch", "2", "--iters", "1", "--vocab", "40", "--embed", "8", "--hidden", "16",
            "--negatives", "5", "--threads", "1", "--precision", precision]  # fmt: skip
    train.main(args)
    out = capsys.readouterr().out
    assert f"our precision {precision}" in out
    assert out.count("ratio ours/reference") == 3, out
    for label in ("G step", "D step", "transfer step"):
        assert label in out


def test_evaluate_benchmark_prints_ratios_and_agrees(capsys):
    evaluate = load("evaluate")
    evaluate.main(
        ["--batch", "1", "--rows", "300", "--vocab", "40", "--embed", "8", "--hidden", "16",
         "--threads", "1"]
    )  # fmt: skip
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "max |diff|" in line]
    assert len(lines) == 4 and "G scoring: prefix tree" in lines[0], out
    for line in lines:  # the prefix tree, teacher forcing and the loops agree
        diff = float(line.rsplit("max |diff| ", 1)[1].rstrip(")"))
        assert diff < 1e-3, line


def test_naive_metrics_match_retrieval_metrics():
    evaluate = load("evaluate")
    scores = torch.tensor([[3.0, 1.0, 3.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    gt = torch.tensor([0, 0])
    naive = evaluate.naive_metrics(scores, gt)
    # row 0: tied with one other for the top -> rank 1 or 2; row 1: rank 4
    assert naive["mean_rank"] == pytest.approx((1.5 + 4) / 2)
    assert naive["mrr"] == pytest.approx(((1 + 0.5) / 2 + 0.25) / 2)
    assert naive["r@1"] == pytest.approx(0.25)
    fast = evaluate.fast_metrics(scores, gt)
    for key, value in naive.items():
        assert fast[key] == pytest.approx(value)


def test_prepare_and_features_benchmarks_run(capsys, monkeypatch, tmp_path):
    prepare = load("prepare")
    monkeypatch.setattr(sys, "argv", ["prepare.py", "--dialogs", "20", "--strings", "200"])
    prepare.main()
    out = capsys.readouterr().out
    assert "prepare (tokenize+vocab+h5)" in out and "strings/s" in out
    features = load("features")
    monkeypatch.setattr(
        sys,
        "argv",
        ["features.py", "--images", "2", "--batch-size", "2", "--num-workers", "0",
         "--image-size", "32", "--device", "cpu", "--workdir", str(tmp_path)],
    )  # fmt: skip
    features.main()
    assert "ratio (a)/(b)" in capsys.readouterr().out


def test_unique_rows_benchmark_runs_and_agrees(capsys):
    ratios = load("unique_rows").main(["--rows", "500", "--iters", "1"])
    assert set(ratios) == {500} and ratios[500] > 0
    assert "unique_rows" in capsys.readouterr().out


def test_serve_latency_runs(tmp_path, monkeypatch):
    from tests.serve.test_app import serve_workspace

    serve_workspace(tmp_path, examples=True)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    out = load("serve").main(["--requests", "2"])
    assert set(out) == {"new image", "cached image", "direct (cached)"}


def test_threads_prints_every_layout(capsys):
    import os

    load("threads").main(["--steps", "1"])
    out = capsys.readouterr().out
    cores = os.cpu_count() or 1
    for threads, processes in ((cores, 1), (1, 1), (cores, 2), (1, 2)):
        assert f"{processes} process(es) x {threads} thread(s)" in out
    assert "vs 1 proc" in out

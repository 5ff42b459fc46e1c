"""Evaluation throughput: options scored per second by G and D, and the retrieval metrics.

    python benchmarks/evaluate.py                                        # 2-core CPU
    python benchmarks/evaluate.py --device cuda --batch 128 --rows 200000    # one GPU

Paper dimensions (embeddings 300, LSTMs 512, vocabulary 8964), synthetic batches of B dialogs x
10 rounds x 100 options of up to 8 tokens (``benchmarks/synthetic.py``), models in eval mode.
In the same process, on the same batch:

* G: ``GenerativeModel.score_options`` (each round's options walked as a prefix tree, every
  distinct prefix stepped once, all rounds batched) vs (a) teacher forcing every option as its
  own sequence (``AnswerDecoder._sequence_log_prob``, batched and chunked, the vocabulary
  projection at real tokens only: what ``score_options`` did before the prefix tree) and (b) a
  Python loop over the 100 options, each scoring that option of every round, encoder run once;
* D: ``DiscriminativeModel.score_options`` (each distinct option encoded once) vs a loop over
  the 100 options through the answer encoder, then the dot products;
* metrics: ``RetrievalMetrics.observe`` on ``--rows`` rounds of 100 scores (with ties) vs a
  per-round Python loop computing the same tie-aware ranks (results checked equal).

The largest score difference between the two ways is printed: they must agree.
``--workspace DIR`` (a workspace after ``dvc repro``, e.g. the demo's) times G's two ways on
real options instead: ``DIR/models/<--model>/best.pt`` on the first ``--batch`` test dialogs of
``DIR/data/prepared`` and ``DIR/data/features``, and counts the rounds whose option order differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import OPTIONS, ROUNDS, VOCAB, synthetic_batch  # noqa: E402

from pipeline.config import ModelConfig  # noqa: E402
from pipeline.data.batch import DialogBatch
from pipeline.evaluation.metrics import RECALL_AT, RetrievalMetrics
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.generator import GenerativeModel
from pipeline.models.variant import Variant
from pipeline.runtime import autocast  # noqa: E402


def timed(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[torch.Tensor, float]:
    """(result, seconds) of ``fn`` after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


@torch.no_grad()
def g_loop(model: GenerativeModel, batch: DialogBatch) -> torch.Tensor:
    """One option position at a time: (B, R, O) summed log-likelihoods."""
    b, r, o, la = batch.options.shape
    e = model.encode(batch)  # (B*R, D)
    options = batch.options.reshape(b * r, o, la)  # (B*R, O, La)
    lengths = batch.options_len.reshape(b * r, o)
    cols = [
        model.decoder.log_prob(e, options[:, i : i + 1], lengths[:, i : i + 1]) for i in range(o)
    ]
    return torch.cat(cols, dim=1).reshape(b, r, o)  # fmt: skip


@torch.no_grad()
def g_sequences(model: GenerativeModel, batch: DialogBatch) -> torch.Tensor:
    """Every option teacher-forced as its own sequence: (B, R, O) summed log-likelihoods."""
    b, r, o, la = batch.options.shape
    decoder = model.decoder
    scores = decoder._sequence_log_prob(
        model.encode(batch),
        batch.options.reshape(b * r, o, la),  # (B*R, O, La)
        batch.options_len.reshape(b * r, o),
        chunk=max(1, 2**22 // decoder.vocab_size),
    )
    return scores.reshape(b, r, o)  # (B, R, O)


@torch.no_grad()
def d_loop(model: DiscriminativeModel, batch: DialogBatch) -> torch.Tensor:
    """One option position at a time: (B, R, O) scores e^T f(a)."""
    e = model.encoder(batch)  # (B, R, D)
    cols = [
        (e * model.answer_encoder(batch.options[:, :, i], batch.options_len[:, :, i])).sum(-1)
        for i in range(batch.options.shape[2])
    ]
    return torch.stack(cols, dim=-1)  # (B, R, O)


def naive_metrics(scores: torch.Tensor, gt_index: torch.Tensor) -> dict[str, float]:
    """Tie-aware MRR / R@k / mean rank (``pipeline/metrics.py``), one round at a time in Python."""
    sums = {"mrr": 0.0, "mean_rank": 0.0, **{f"r@{k}": 0.0 for k in RECALL_AT}}
    for row, gt in zip(scores.tolist(), gt_index.tolist(), strict=True):
        s = row[gt]
        better = sum(1 for x in row if x > s)
        tied = sum(1 for x in row if x == s) - 1
        ranks = range(better + 1, better + tied + 2)  # equally likely
        sums["mrr"] += sum(1.0 / k for k in ranks) / (tied + 1)
        sums["mean_rank"] += better + 1 + tied / 2
        for k in RECALL_AT:
            sums[f"r@{k}"] += sum(1 for x in ranks if x <= k) / (tied + 1)
    return {key: value / len(gt_index) for key, value in sums.items()}


def fast_metrics(scores: torch.Tensor, gt_index: torch.Tensor) -> dict[str, float]:
    metrics = RetrievalMetrics()
    metrics.observe(scores, gt_index)
    return metrics.retrieve()


def workspace_g(workspace: Path, model_name: str, n_dialogs: int) -> None:
    """G's prefix tree against teacher forcing on a trained workspace's test options."""
    import numpy as np

    from pipeline.data.loaders import load_data
    from pipeline.models.checkpoint import load_model

    test = load_data(workspace / "data/prepared", workspace / "data/features", "test")
    model = load_model(workspace / "models" / model_name / "best.pt").eval()
    batch = test[np.arange(min(n_dialogs, len(test)))]
    n_options = batch.options[..., 0].numel()
    cpu = torch.device("cpu")
    ours, t_ours = timed(lambda: model.score_options(batch), cpu)
    base, t_base = timed(lambda: g_sequences(model, batch), cpu)
    reordered = (ours.argsort(dim=-1, stable=True) != base.argsort(dim=-1, stable=True)).any(-1)
    print(
        f"{model_name} on {len(batch.options)} test dialogs of {workspace}: prefix tree "
        f"{n_options / t_ours:10,.0f} options/s | teacher-forced sequences "
        f"{n_options / t_base:10,.0f} options/s | ratio {t_base / t_ours:6.2f}x (max |diff| "
        f"{float((ours - base).abs().max()):.1e}, option order differs in "
        f"{int(reordered.sum())}/{reordered.numel()} rounds)"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4, help="dialogs scored (x 10 rounds x 100)")
    ap.add_argument("--rows", type=int, default=20000, help="rounds for the metrics benchmark")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--popular", type=int, default=30, help="options/round from 100 frequent ones")
    ap.add_argument("--vocab", type=int, default=VOCAB)
    ap.add_argument("--embed", type=int, default=300, help="word embedding size (paper: 300)")
    ap.add_argument("--hidden", type=int, default=512, help="LSTM size (paper: 512)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workspace", type=Path, help="time G on this workspace's test options")
    ap.add_argument("--model", default="hciae-g-mle", help="with --workspace: the G variant")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workspace:
        print(f"{torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}")
        for _ in range(3):
            workspace_g(args.workspace, args.model, args.batch)
        return
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    batch = synthetic_batch(args.batch, args.vocab, args.popular, args.seed).to(device)
    n_options = args.batch * ROUNDS * OPTIONS
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device: {where}, {torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}; "
        f"{args.batch} dialogs x {ROUNDS} rounds x {OPTIONS} options, vocab {args.vocab}, "
        f"embed {args.embed}, LSTM {args.hidden}"
    )
    cfg = ModelConfig(embed_dim=args.embed, hidden=args.hidden)
    g_model = GenerativeModel(Variant.parse("hciae-g-mle"), args.vocab, cfg)
    d_model = DiscriminativeModel(Variant.parse("hciae-d-np-att"), args.vocab, cfg)
    models = {  # name: (model, what ours is, [(baseline, its scorer)])
        "G": (g_model, "prefix tree",
              [("teacher-forced sequences", g_sequences), ("per-option loop", g_loop)]),
        "D": (d_model, "batched", [("per-option loop", d_loop)]),
    }  # fmt: skip
    for name, (model, ours_label, baselines) in models.items():
        model = model.to(device).eval()
        with autocast(device):
            ours, t_ours = timed(lambda: model.score_options(batch).float(), device)  # noqa: B023
            for base_label, scorer in baselines:
                base, t_base = timed(lambda: scorer(model, batch).float(), device)  # noqa: B023
                print(
                    f"{name} scoring: {ours_label} {n_options / t_ours:10,.0f} options/s | "
                    f"{base_label} {n_options / t_base:10,.0f} options/s | ratio "
                    f"{t_base / t_ours:6.2f}x (max |diff| {float((ours - base).abs().max()):.1e})"
                )
    g = torch.Generator().manual_seed(args.seed)
    scores = torch.randint(0, 40, (args.rows, OPTIONS), generator=g).float()  # ties on purpose
    gt = torch.randint(0, OPTIONS, (args.rows,), generator=g)
    fast, t_fast = timed(lambda: fast_metrics(scores, gt), torch.device("cpu"))
    naive, t_naive = timed(lambda: naive_metrics(scores, gt), torch.device("cpu"))
    diff = max(abs(fast[k] - naive[k]) for k in naive)
    print(
        f"metrics: RetrievalMetrics {args.rows / t_fast:12,.0f} rounds/s | Python loop "
        f"{args.rows / t_naive:10,.0f} rounds/s | ratio ours/loop {t_naive / t_fast:6.1f}x "
        f"(max |diff| {diff:.1e})"
    )


if __name__ == "__main__":
    main()

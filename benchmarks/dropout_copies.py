"""Does D's sharing of one dropout mask among the copies of an answer change anything?

In train mode ``DiscriminativeModel.encode_answers`` encodes each distinct answer of a batch
once, so all copies of "yes" share one dropout mask. This trains the demo's HCIAE-D-NP-ATT twice
per seed on the prepared demo data — as the pipeline does, and with every copy encoded on its
own (its own mask) — and prints best val MRR, test MRR and the time per run side by side.
Run from the repository root after the demo's features stage:
``python benchmarks/dropout_copies.py --seeds 0 1``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from pipeline.config import TrainDConfig
from pipeline.data.loaders import load_data
from pipeline.evaluation.evaluate import evaluate_split
from pipeline.models.checkpoint import load_model
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.training.loop import RunFiles
from pipeline.training.pretrain import pretrain
from stages.params import load_params

SHARED = DiscriminativeModel.encode_answers


def encode_every_copy(self, tokens, lengths):
    """Each answer row on its own in train mode (its own dropout mask); as before in eval."""
    if not self.training:
        return SHARED(self, tokens, lengths)
    la = tokens.shape[-1]
    f = self.answer_encoder(tokens.reshape(-1, la), lengths.reshape(-1).clamp(1, la))
    return f.reshape(*lengths.shape, -1)  # (..., D)


def run(variant: str, cfg: TrainDConfig, params, mode: str, root: Path) -> dict:
    DiscriminativeModel.encode_answers = SHARED if mode == "shared" else encode_every_copy
    prepared, features = Path("data/prepared"), Path("data/features")
    files = RunFiles(root / mode / "resume", root / mode / "out", root / mode / "live")
    start = time.perf_counter()
    history = pretrain(variant, cfg, params.model, prepared, features, files, progress=False)
    seconds = time.perf_counter() - start
    DiscriminativeModel.encode_answers = SHARED
    model = load_model(files.out_dir / "best.pt")
    test, _ = evaluate_split(model, load_data(prepared, features, "test"), 16, torch.device("cpu"))
    best = max(row["val_mrr"] for row in history)
    return {"val": best, "test": test["mrr"], "epochs": len(history), "seconds": seconds}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="hciae-d-np-att")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args(argv)
    params = load_params()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cfg = dataclasses.replace(params.train_d, seed=seed, device="cpu")
            for mode in ("shared", "own"):
                out[(seed, mode)] = r = run(args.variant, cfg, params, mode, Path(tmp) / str(seed))
                print(
                    f"seed {seed} {mode:6s} masks: best val MRR {r['val']:.4f}, test MRR "
                    f"{r['test']:.4f}, {r['epochs']} epochs, {r['seconds']:.0f} s",
                    flush=True,
                )
    return out


if __name__ == "__main__":
    main()

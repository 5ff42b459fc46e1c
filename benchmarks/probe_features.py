"""Linear probe: can the demo's pool5 features tell the colour / shape of the object in a cell?

Run after the demo's features stage, from the repository root:
``python benchmarks/probe_features.py``. For every 3x3 grid cell of a demo image, the pool5
vectors whose centres lie in that cell are averaged (512-d) and a linear classifier (Adam, 300
full-batch steps) predicts the cell's object colour / shape (or "empty") from the train images;
accuracy is over the test images' objects. It separates "the features cannot see it" from "G
does not learn to say it" (issue 13, item 5).
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np
import torch

from pipeline.config import DemoConfig
from pipeline.demo.dialogs import COLOURS, SHAPES
from pipeline.demo.generate import build_split
from pipeline.demo.scenes import GRID

POOL = 7  # pool5 cells per side at 224 px


def cell_samples(cfg: DemoConfig, split: str, features: str):
    """(X (N*9, 512), colour labels, shape labels); label 0 = empty cell."""
    with h5py.File(features, "r") as f:
        row = {int(i): k for k, i in enumerate(f["image_id"][()])}
        maps = f["features"][()].astype(np.float32)  # (N, 512, 7, 7)
    inside = [[i for i in range(POOL) if int((i + 0.5) * GRID / POOL) == c] for c in range(GRID)]
    xs, colours, shapes = [], [], []
    for dialog in build_split(cfg, split):
        if dialog.scene.image_id not in row:
            continue
        fmap = maps[row[dialog.scene.image_id]]
        objects = {(o.row, o.col): o for o in dialog.scene.objects}
        for r in range(GRID):
            for c in range(GRID):
                xs.append(fmap[:, inside[r]][:, :, inside[c]].mean((1, 2)))  # (512,)
                o = objects.get((r, c))
                colours.append(list(COLOURS).index(o.colour) + 1 if o else 0)
                shapes.append(list(SHAPES).index(o.shape) + 1 if o else 0)
    return torch.tensor(np.array(xs)), torch.tensor(colours), torch.tensor(shapes)


def probe(x_train, y_train, x_test, y_test, classes: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    linear = torch.nn.Linear(x_train.shape[1], classes)
    opt = torch.optim.Adam(linear.parameters(), 1e-2, weight_decay=1e-3)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    objects = y_test > 0
    return float((linear(x_test).argmax(1) == y_test)[objects].float().mean())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-features", default="data/features/train.h5")
    ap.add_argument("--test-features", default="data/features/test.h5")
    ap.add_argument("--train-dialogs", type=int, default=500)
    ap.add_argument("--test-dialogs", type=int, default=100)
    args = ap.parse_args(argv)
    cfg = DemoConfig(train_dialogs=args.train_dialogs, val_dialogs=args.test_dialogs)
    x_tr, c_tr, s_tr = cell_samples(cfg, "train", args.train_features)
    x_te, c_te, s_te = cell_samples(cfg, "val", args.test_features)  # the demo val = test
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    out = {}
    for name, y_tr, y_te, k in (("colour", c_tr, c_te, len(COLOURS) + 1),
                                ("shape", s_tr, s_te, len(SHAPES) + 1)):  # fmt: skip
        out[name] = probe(x_tr, y_tr, x_te, y_te, k)
        labels = y_te[y_te > 0]
        majority = float((labels == labels.mode().values).float().mean())
        print(f"{name}: linear probe {out[name]:.3f} on {len(labels)} test objects "
              f"(majority class {majority:.3f})")  # fmt: skip
    return out


if __name__ == "__main__":
    main()

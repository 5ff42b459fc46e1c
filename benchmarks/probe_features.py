"""Linear probe: can the demo's pool5 features tell the colour / shape of the object in a cell?

Run after the demo's features stage, from the repository root: ``python benchmarks/probe_features.py``.
For every 3x3 grid cell of a demo image, the pool5 vectors whose centres lie in that cell are
averaged (512-d) and a linear classifier (Adam, 300 full-batch steps) predicts the cell's object
colour / shape (or "empty") from the train images; accuracy is over the test images' objects.
It separates "the features cannot see it" from "G does not learn to say it" (issue 13, item 5).
"""
import h5py, numpy as np, torch
from pipeline.config import DemoConfig
from pipeline.demo.generate import build_split
from pipeline.demo.dialogs import COLOURS, SHAPES
torch.manual_seed(0)
cfg = DemoConfig(train_dialogs=500, val_dialogs=100)
colours, shapes = list(COLOURS), list(SHAPES)
def samples(split, h5name):
    f = h5py.File(f"data/features/{h5name}.h5", "r")
    row = {int(i): k for k, i in enumerate(f["image_id"][()])}
    feats = f["features"][()].astype(np.float32)  # (N, 512, 7, 7)
    X, yc, ys = [], [], []
    for d in build_split(cfg, split):
        if d.scene.image_id not in row: continue
        fm = feats[row[d.scene.image_id]]
        occupied = {(o.row, o.col): o for o in d.scene.objects}
        for r in range(3):
            for c in range(3):
                # pool5 cells whose centre lies in grid cell (r, c)
                idx = [i for i in range(7) if int((i + 0.5) * 3 / 7) == r]
                jdx = [j for j in range(7) if int((j + 0.5) * 3 / 7) == c]
                X.append(fm[:, idx][:, :, jdx].mean((1, 2)))
                o = occupied.get((r, c))
                yc.append(colours.index(o.colour) + 1 if o else 0)
                ys.append(shapes.index(o.shape) + 1 if o else 0)
    return torch.tensor(np.array(X)), torch.tensor(yc), torch.tensor(ys)
Xtr, ctr, str_ = samples("train", "train")
Xte, cte, ste = samples("val", "test")
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
for name, ytr, yte, k in (("colour", ctr, cte, 7), ("shape", str_, ste, 5)):
    lin = torch.nn.Linear(512, k); opt = torch.optim.Adam(lin.parameters(), 1e-2, weight_decay=1e-3)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(lin(Xtr), ytr); opt.zero_grad(); loss.backward(); opt.step()
    acc = (lin(Xte).argmax(1) == yte)[yte > 0].float().mean()
    chance = (yte[yte > 0] == yte[yte > 0].mode().values).float().mean()
    print(f"{name}: linear probe accuracy on test objects {acc:.3f} (majority {chance:.3f}), n={int((yte>0).sum())}")

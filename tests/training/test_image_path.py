"""The pipeline's image path, end to end: a small model trained on a slice of the demo must use the
image, or something between the pixels and the scores is broken.

Demo dialogs -> PNGs -> features -> prepare -> D (HCIAE-D-NP-ATT, the demo's most image-reading
model, ``model.image_norm: zscore``) trained by ``pretrain`` -> ``evaluate_split`` with the
shuffled-image ablation. To stay within a minute the features are not VGG-19's (the features
stage has its own tests) but what a pool5 cell sees at its simplest: the mean colour of each
32x32 block of the 224 px image, in channels 0-2 of the (512, 7, 7) layout the features stage
writes, read back through ``FeatureReader``. The test fails unless

- test MRR with each dialog's own image beats MRR with another dialog's image by more than
  ``MARGIN`` (measured on this slice on 2026-12-07: own 0.434, shuffled 0.408, +0.026; each of
  the four mutants of ``scripts/mutate`` fails the test), and
- the image attention is not uniform (mean entropy below log K - ``FOCUS`` nats).

It guards (``scripts/mutate``): features zeroed when read, feature rows misaligned with image ids,
uniform image attention, and an ablation that scores the own image.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.config import DemoConfig, MaxLen, ModelConfig, TrainDConfig
from pipeline.data.loaders import dialog_chunks, load_data
from pipeline.data.prepare import hold_out, prepare
from pipeline.data.visdial import read_visdial
from pipeline.demo.generate import generate_demo
from pipeline.evaluation.evaluate import evaluate_split, next_images
from pipeline.models.checkpoint import load_model
from pipeline.training.loop import RunFiles
from pipeline.training.pretrain import pretrain

MARGIN = 0.015  # own - shuffled test MRR it must exceed
FOCUS = 0.1  # nats below uniform the mean image-attention entropy must be
SLICE = DemoConfig(train_dialogs=450, val_dialogs=60, dialogs_per_image=3)


def block_features(image_ids: Path, images: Path, out: Path) -> None:
    """Each image's 32x32-block mean colours as (512, 7, 7) features (channels 3.. zero)."""
    out.mkdir()
    with h5py.File(image_ids, "r") as ids_file:
        for split in ids_file:
            ids = ids_file[split]["image_id"][()]
            feats = np.zeros((len(ids), 512, 7, 7), np.float16)
            for row, image_id in enumerate(ids.tolist()):
                with Image.open(images / (SLICE.image_pattern % image_id)) as img:
                    pixels = np.asarray(img.convert("RGB"), np.float32) / 255  # (224, 224, 3)
                blocks = pixels.reshape(7, 32, 7, 32, 3).mean((1, 3))  # (7, 7, 3)
                feats[row, :3] = blocks.transpose(2, 0, 1)
            with h5py.File(out / f"{split}.h5", "w") as f:
                f["image_id"], f["features"] = ids, feats


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("image_path")
    generate_demo(root / "demo", SLICE)
    train, val = hold_out(read_visdial(root / "demo" / "visdial_0.9_train.json"), 45, seed=0)
    test = read_visdial(root / "demo" / "visdial_0.9_val.json")
    prepare({"train": train, "val": val, "test": test}, root / "prepared", min_count=1,
            max_len=MaxLen())  # fmt: skip
    block_features(root / "prepared" / "image_ids.h5", root / "demo" / "images", root / "features")
    cfg = TrainDConfig(epochs=10, batch_size=16, lr=2e-3, negatives=31, device="cpu",
                       precision="fp32", val_dialogs=0)  # fmt: skip
    files = RunFiles(root / "resume", root / "model", root / "live")
    model_cfg = ModelConfig(embed_dim=64, hidden=128, dropout=0.2, image_norm="zscore")
    pretrain("hciae-d-np-att", cfg, model_cfg, root / "prepared", root / "features", files,
             progress=False)  # fmt: skip
    return root / "prepared", root / "features", root / "model" / "best.pt"


def test_a_small_model_uses_the_image(trained):
    prepared, features, checkpoint = trained
    model = load_model(checkpoint)
    test = load_data(prepared, features, "test")
    _, table = evaluate_split(model, test, 16, torch.device("cpu"), shuffled_images=True)
    own, shuffled = float(table["rr"].mean()), float(table["rr_shuffled"].mean())
    assert own - shuffled > MARGIN, f"own {own:.3f} vs shuffled {shuffled:.3f}"

    entropies = []
    with torch.no_grad():
        for _, batch in dialog_chunks(test, 16):
            _, _, alpha = model.encoder.encode(batch)  # (B, R, K)
            entropies.append(-(alpha * alpha.clamp_min(1e-12).log()).sum(-1).flatten())
    k = alpha.shape[-1]
    entropy = float(torch.cat(entropies).mean())
    assert entropy < math.log(k) - FOCUS, (
        f"image attention entropy {entropy:.3f} of {math.log(k):.3f}"
    )


def test_the_ablation_shows_another_image(trained):
    """Every test dialog is scored with an image that is not its own."""
    prepared, features, _ = trained
    test = load_data(prepared, features, "test")
    other = next_images(test)
    ids = test.arrays["image_id"]
    assert not np.any(test.feature_rows == other.feature_rows)
    assert len(set(ids.tolist())) == len(ids)  # the test role has one dialog per image

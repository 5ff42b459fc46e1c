"""The pipeline's image path, end to end: a small model trained on a slice of the demo must use the
image, or something between the pixels and the scores is broken.

Demo dialogs -> images -> VGG-19 pool5 (the demo's ``dirac`` weights, 128 px so the slice stays
fast) -> prepare -> D (HCIAE-D-NP-ATT, the demo's most image-reading model) trained by
``pretrain`` -> ``evaluate_split`` with the shuffled-image ablation. The test fails unless

- test MRR with each dialog's own image beats MRR with another dialog's image by more than
  ``MARGIN`` (measured on this slice: +0.10; a model that ignores the image gives 0 +- 0.01), and
- the image attention is not uniform (mean entropy below log K - ``FOCUS`` nats).

It guards (``scripts/mutate``): features zeroed when read, feature rows misaligned with image ids,
uniform image attention, and an ablation that scores the own image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import DemoConfig, FeaturesConfig, MaxLen, ModelConfig, TrainDConfig
from pipeline.data.loaders import dialog_chunks, load_data
from pipeline.data.prepare import hold_out, prepare
from pipeline.data.visdial import read_visdial
from pipeline.demo.generate import generate_demo
from pipeline.evaluation.evaluate import evaluate_split, next_images
from pipeline.features.extract import extract_features
from pipeline.models.checkpoint import load_model
from pipeline.training.loop import RunFiles
from pipeline.training.pretrain import pretrain

MARGIN = 0.03  # own - shuffled test MRR it must exceed
FOCUS = 0.1  # nats below uniform the mean image-attention entropy must be
SLICE = DemoConfig(train_dialogs=240, val_dialogs=40, dialogs_per_image=3, image_size=128)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("image_path")
    generate_demo(root / "demo", SLICE)
    train, val = hold_out(read_visdial(root / "demo" / "visdial_0.9_train.json"), 30, seed=0)
    test = read_visdial(root / "demo" / "visdial_0.9_val.json")
    prepare({"train": train, "val": val, "test": test}, root / "prepared", min_count=1,
            max_len=MaxLen())  # fmt: skip
    patterns = {s: SLICE.image_pattern for s in ("train", "val", "test")}
    features = FeaturesConfig(image_size=128, weights="dirac", patterns=patterns, num_workers=0)
    extract_features(root / "prepared" / "image_ids.h5", root / "demo" / "images",
                     root / "features", features, progress=False)  # fmt: skip
    cfg = TrainDConfig(epochs=8, batch_size=16, lr=2e-3, negatives=31, device="cpu",
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

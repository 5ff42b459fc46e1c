"""The GPU path, tested: every test is marked ``cuda`` and skipped where CUDA is missing.

Run them with ``pytest -m cuda`` (``benchmarks/gpu_check.sh`` does, with the benchmarks and a
``dvc repro`` on CUDA). Each compares the GPU against an independent CPU computation.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import yaml

from pipeline.config import (
    FeaturesConfig,
    ModelConfig,
    TrainDConfig,
    TrainGConfig,
    TransferConfig,
)
from pipeline.evaluation.evaluate import evaluate_model
from pipeline.models.gumbel import gumbel_softmax_st
from pipeline.training.loop import RunFiles
from pipeline.training.pretrain import pretrain
from pipeline.training.transfer import TransferFiles, run_transfer
from tests.conftest import REPO

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (pytest -m cuda)"),
]
MODEL = ModelConfig(embed_dim=32, hidden=48, dropout=0.1)


def _files(root, name) -> RunFiles:
    return RunFiles(root / ".resume" / name, root / "models" / name, root / "live" / name)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A G and a D pretrained on the GPU under bf16 autocast (precision auto)."""
    prepared, features = tiny_data
    root = tmp_path_factory.mktemp("cuda")
    paths = {}
    for variant in ("hciae-g-mle", "hciae-d-np-att"):
        cfg = TrainGConfig(epochs=2, batch_size=4, device="cuda", precision="auto")
        if "-d-" in variant:
            cfg = TrainDConfig(epochs=2, batch_size=4, device="cuda", negatives=9)
        history = pretrain(variant, cfg, MODEL, prepared, features, _files(root, variant),
                           progress=False)  # fmt: skip
        assert all(math.isfinite(row["train_loss"]) for row in history)
        paths[variant] = root / "models" / variant / "best.pt"
    return paths


def test_features_bf16_agree_with_fp32(tmp_path):
    from PIL import Image

    from pipeline.features.extract import extract_features
    from tests.features.test_extract import write_dialogs

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 9):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"demo_{i:012d}.png")
    dialogs = write_dialogs(tmp_path / "ids.h5", {"train": list(range(1, 9))})
    out = {}
    for precision in ("fp32", "bf16"):
        cfg = FeaturesConfig(image_size=224, device="cuda", precision=precision, num_workers=0,
                             dtype="float32", patterns={"train": "demo_%012d.png"})  # fmt: skip
        extract_features(dialogs, images, tmp_path / precision, cfg, progress=False)
        with h5py.File(tmp_path / precision / "train.h5", "r") as f:
            out[precision] = f["features"][()]
    scale = np.abs(out["fp32"]).max()
    assert scale > 0 and np.abs(out["bf16"] - out["fp32"]).max() < 3e-2 * scale


def test_gdis_step_under_autocast(trained, tiny_data, tmp_path):
    prepared, features = tiny_data
    files = TransferFiles(tmp_path / ".resume", tmp_path / "live", tmp_path / "models/hciae-g-dis")
    cfg = TransferConfig(epochs=1, batch_size=4, device="cuda", negatives=9, precision="auto")
    history = run_transfer("dis", cfg, trained["hciae-g-mle"], trained["hciae-d-np-att"],
                           prepared, features, files, progress=False)  # fmt: skip
    assert math.isfinite(history[0]["train_lg"]) and math.isfinite(history[0]["train_lmle"])


@pytest.mark.parametrize("gap", [8.0, 4.0])
def test_gumbel_frequencies_on_cuda_under_bf16(gap):
    v, n, chunk = 9000, 20_000, 5000
    logits = torch.zeros(chunk, v, device="cuda", dtype=torch.bfloat16)
    logits[:, 0] = gap
    p = torch.softmax(logits[0].double(), -1)[0].item()
    gen = torch.Generator(device="cuda").manual_seed(0)
    hits = 0
    with torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(n // chunk):
            hits += int((gumbel_softmax_st(logits, 0.5, generator=gen).argmax(-1) == 0).sum())
    assert abs(hits / n - p) < 5 * math.sqrt(p * (1 - p) / n), (hits / n, p)


@pytest.mark.parametrize("variant", ["hciae-g-mle", "hciae-d-np-att"])
def test_evaluate_on_cuda_agrees_with_cpu(trained, tiny_data, tmp_path, variant):
    prepared, features = tiny_data
    got = {
        device: evaluate_model(trained[variant], prepared, features, tmp_path / f"{device}.json",
                               tmp_path / f"{device}_ranks.json", device=device,
                               precision="fp32", progress=False)
        for device in ("cpu", "cuda")
    }  # fmt: skip
    for key in ("mrr", "r@1", "r@5", "r@10", "mean_rank"):
        assert got["cuda"][key] == pytest.approx(got["cpu"][key], rel=1e-3, abs=1e-3), key


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_nccl_two_processes_match_one(tiny_data, tmp_path):
    prepared, features = tiny_data
    params = {
        "model": {"embed_dim": 16, "hidden": 24, "dropout": 0.0},
        "train_g": {"epochs": 2, "batch_size": 4, "device": "cuda", "precision": "fp32"},
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [
        "-m",
        "stages.train_g",
        "--variant",
        "hciae-g-mle",
        "--prepared",
        str(prepared),
        "--features",
        str(features),
        "--out",
        "m",
        "--live",
        "l",
        "--resume",
        "r",
    ]
    for name, launcher in (("one", [sys.executable]),
                           ("two", [sys.executable, "-m", "torch.distributed.run",
                                    "--standalone", "--nproc_per_node=2"])):  # fmt: skip
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "params.yaml").write_text(yaml.safe_dump(params))
        proc = subprocess.run([*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = torch.load(tmp_path / "one/m/last.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two/m/last.pt", weights_only=True)["model"]
    for key in one:
        torch.testing.assert_close(one[key], two[key], atol=1e-5, rtol=1e-4)

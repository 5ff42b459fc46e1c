"""Features throughput: the whole stage path vs the bare network forward, same process and images.

(a) ``extract_features`` end to end: JPEG decode → resize (DataLoader workers) → VGG-19 → HDF5;
(b) the same backbone on pre-made normalised tensors, same batch size, device and precision.
The ratio (a)/(b) says how well decoding and writing hide behind the network (goal >= 0.9).

    python benchmarks/features.py --images 48 --batch-size 16            # 2-core CPU
    python benchmarks/features.py --images 2048 --batch-size 128 --num-workers 14   # one GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image

from pipeline.config import FeaturesConfig
from pipeline.features.backbone import load_backbone
from pipeline.features.extract import extract_features
from pipeline.runtime import autocast, resolve_device

PATTERN = "img_%012d.jpg"


def make_images(directory: Path, n: int, seed: int = 0) -> None:
    """COCO-like 640x480 JPEGs: smooth colour fields plus noise (realistic decode cost)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(n):
        path = directory / (PATTERN % i)
        if path.exists():
            continue
        a, b, c = rng.uniform(0.005, 0.03, 3)
        base = np.stack(
            [np.sin(a * xx + i), np.cos(b * yy), np.sin(c * (xx + yy))], -1
        )  # (H, W, 3)
        noise = rng.normal(0, 12, base.shape)
        pixels = np.clip(127 + 100 * base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=90)


@torch.inference_mode()
def bare_forward(cfg: FeaturesConfig, n: int) -> float:
    """Images/s of the backbone alone on random normalised tensors (after one warm-up batch)."""
    device = resolve_device(cfg.device)
    model = load_backbone(cfg.weights, cfg.seed).module.to(device)
    x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size, device=device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    batches = max(1, n // cfg.batch_size)
    with autocast(device, cfg.precision):  # the stage's own precision rule
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(batches):
            model(x).to(getattr(torch, cfg.dtype))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return batches * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="auto | fp32 | bf16")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_feat")
    args = parser.parse_args()
    cfg = dataclasses.replace(
        FeaturesConfig(),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        image_size=args.image_size,
        device=args.device,
        precision=args.precision,
        patterns={"train": PATTERN},
    )
    images = args.workdir / "images"
    make_images(images, args.images)
    dialogs = args.workdir / "dialogs.h5"
    with h5py.File(dialogs, "w") as f:
        f["train/image_id"] = np.arange(args.images, dtype=np.int64)
    out = args.workdir / "features"
    bare_forward(dataclasses.replace(cfg), cfg.batch_size)  # warm the process up (oneDNN/cuDNN)
    start = time.perf_counter()
    extract_features(dialogs, images, out, cfg, progress=False)
    stage = args.images / (time.perf_counter() - start)
    bare = bare_forward(cfg, args.images)
    device = "cuda" if torch.cuda.is_available() and cfg.device != "cpu" else "cpu"
    name = (
        torch.cuda.get_device_name() if device == "cuda" else f"{torch.get_num_threads()} threads"
    )
    print(f"device: {device} ({name}), {args.images} JPEG 640x480, batch {cfg.batch_size}")
    print(f"(a) stage path  : {stage:8.1f} images/s (decode, resize, network, HDF5 write)")
    print(f"(b) bare forward: {bare:8.1f} images/s")
    print(f"ratio (a)/(b)   : {stage / bare:8.3f}")


if __name__ == "__main__":
    main()

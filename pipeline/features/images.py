"""Image decoding and preprocessing for the VGG-19 features (paper §5: "rescale to 224×224").

The pipeline is the canonical torchvision one, split in two so that the expensive half runs in
DataLoader workers and the cheap half on the accelerator:

- ``load_uint8`` (workers): decode any PIL mode to RGB, resize to ``size × size`` with PIL
  bilinear (no crop, aspect ratio not kept), return a ``(3, size, size)`` uint8 tensor;
- ``normalize`` (device): ``(x / 255 - mean) / std`` with the ImageNet statistics.

Together they equal ``Resize((size, size)) → ToTensor() → Normalize(IMAGENET_MEAN, IMAGENET_STD)``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, 1, P with or without transparency, RGBA, CMYK, 16-bit) → RGB.

    Alpha is dropped, not composited. 16-bit grey is scaled to 8 bits (PIL would clip it).
    """
    if img.mode in _SIXTEEN_BIT:
        grey = np.asarray(img, dtype=np.int64)
        grey = np.clip(grey >> 8, 0, 255).astype(np.uint8)
        img = Image.fromarray(grey, mode="L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when a palette with transparency goes to RGB
    return img if img.mode == "RGB" else img.convert("RGB")


def load_uint8(path: str | os.PathLike, size: int) -> torch.Tensor:
    """Decode ``path`` fully and resize it: ``(3, size, size)`` uint8.

    Raises ``OSError``/``ValueError`` (PIL's own) for a missing, truncated or undecodable file.
    """
    with Image.open(path) as img:
        img.load()  # decode now: a truncated file fails here, not later
        rgb = to_rgb(img).resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(rgb, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)  # (3, H, W)


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` on any device → float32 ImageNet-normalised ``(B, 3, H, W)``."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 3, 1, 1)  # (1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(1, 3, 1, 1)  # (1, 3, 1, 1)
    return (batch.float().div_(255.0) - mean).div_(std)

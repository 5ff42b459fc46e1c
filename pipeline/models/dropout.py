"""Dropout whose CPU masks cost half as much as ``nn.Dropout``'s.

On the CPU, ``nn.Dropout`` draws its mask with ``bernoulli_``, about twice as slow as comparing
``torch.rand`` with p; at paper size it was ~15 % of a G training step, mostly the mask over the
(B, R, 49, 512) image-attention features (``benchmarks/README.md``). Same distribution (each
element kept with probability 1 - p and scaled by 1 / (1 - p)), seeded by the torch RNG, so CPU
runs stay reproducible. Elsewhere (CUDA: a fused kernel) it is ``nn.Dropout``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` (not in place) with ``rand``-drawn masks on the CPU."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or self.p == 1.0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.rand(x.shape, dtype=torch.float32) >= self.p  # x.shape, bool
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

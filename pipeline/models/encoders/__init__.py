"""Dialog encoders: (image, caption, dialog history, question) -> e_t for every round at once.

Chosen by the first part of a variant's name (``hciae``-g-mle, ``lf``-d …; see
``pipeline.models.variants``) from ``ENCODERS``. Each takes the shared word embedding and
returns a (B, R, out_dim) tensor from ``forward(batch)``; round t sees the caption and the QA
pairs of rounds < t only.
"""

from __future__ import annotations

from torch import nn

from pipeline.errors import InputError
from pipeline.models.encoders.common import DialogEncoder
from pipeline.models.encoders.hciae import HCIAE
from pipeline.models.encoders.hre import HRE, HREA
from pipeline.models.encoders.lf import LateFusion
from pipeline.models.encoders.mn import MemoryNetwork

ENCODERS: dict[str, type[DialogEncoder]] = {
    "hciae": HCIAE,
    "lf": LateFusion,
    "hre": HRE,
    "hrea": HREA,
    "mn": MemoryNetwork,
}


def build_encoder(
    name: str,
    embedding: nn.Embedding,
    hidden: int = 512,
    img_dim: int = 512,
    out_dim: int = 512,
    dropout: float = 0.5,
    image_norm: str = "none",
) -> DialogEncoder:
    """The encoder registered under ``name``; an unknown name is a user error (a params value)."""
    try:
        cls = ENCODERS[name]
    except KeyError:
        choices = ", ".join(ENCODERS)
        raise InputError(f"unknown encoder {name!r} (choose one of {choices})") from None
    return cls(
        embedding, hidden=hidden, img_dim=img_dim, out_dim=out_dim, dropout=dropout,
        image_norm=image_norm,
    )  # fmt: skip


__all__ = [
    "ENCODERS",
    "HCIAE",
    "HRE",
    "HREA",
    "DialogEncoder",
    "LateFusion",
    "MemoryNetwork",
    "build_encoder",
]

"""Building a model from its variant name (the paper's table rows), and its checkpoint meta.

The names and what they mean: ``pipeline.models.variant`` (``Variant``, imported here and by G
and D). Encoders: ``pipeline.models.encoders``; G: ``pipeline.models.generator``; D:
``pipeline.models.discriminator``.
"""

from __future__ import annotations

from dataclasses import asdict

from pipeline.config import ModelConfig
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.generator import GenerativeModel
from pipeline.models.variant import Variant


def build_model(
    name: str, vocab_size: int, cfg: ModelConfig, negatives: int = 99, l2: float = 0.0
) -> GenerativeModel | DiscriminativeModel:
    variant = Variant.parse(name)
    if variant.kind == "g":
        return GenerativeModel(variant, vocab_size, cfg)
    return DiscriminativeModel(variant, vocab_size, cfg, negatives=negatives, l2=l2)


def model_meta(model: GenerativeModel | DiscriminativeModel, vocab_size: int) -> dict:
    """What a checkpoint must match to be loaded into a model (plain types only).

    ``arch`` is the variant whose architecture the weights fit; ``variant`` names the trained
    model (they differ for models derived by transfer, e.g. ``hciae-g-dis`` has arch
    ``hciae-g-mle``).
    """
    name = model.variant.name
    return {"variant": name, "arch": name, "vocab_size": vocab_size, **asdict(model.cfg)}

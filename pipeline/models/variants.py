"""Model variants by name (the paper's table rows), and building a model from its name.

Variant names follow the paper's tables: ``<encoder>-g[-mle]`` is a generative model trained with
MLE (``hciae-g-mle`` = HCIAE-G-MLE, ``lf-g`` = LF-G); ``<encoder>-d[-mle|-np][-att]`` is a
discriminative one, trained with softmax cross-entropy over the options (``-mle`` or nothing, the
"D-MLE" of the paper and the Das et al. baselines) or the N-pair loss (``-np``, Eq. 4), with the
self-attentive answer encoder when ``-att`` ends the name. Encoders: ``pipeline.models.encoders``;
G: ``pipeline.models.generator``; D: ``pipeline.models.discriminator``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline.config import ModelConfig
from pipeline.errors import InputError
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.encoders import ENCODERS
from pipeline.models.generator import GenerativeModel


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # "g" | "d"
    encoder: str
    loss: str  # "mle" (G), "ce" | "np" (D)
    attention: bool = False

    @classmethod
    def parse(cls, name: str) -> Variant:
        parts = name.lower().split("-")
        ok = len(parts) >= 2 and parts[0] in ENCODERS and parts[1] in ("g", "d")
        rest = parts[2:] if ok else []
        if ok and parts[1] == "g":
            ok = rest in ([], ["mle"])
            return cls(name, "g", parts[0], "mle") if ok else _bad_variant(name)
        attention = bool(rest) and rest[-1] == "att"
        rest = rest[:-1] if attention else rest
        if not ok or rest not in ([], ["mle"], ["np"]):
            _bad_variant(name)
        return cls(name, "d", parts[0], "np" if rest == ["np"] else "ce", attention)


def _bad_variant(name: str):
    encoders = "|".join(ENCODERS)
    raise InputError(
        f"unknown model variant {name!r}: expected <encoder>-g[-mle] or "
        f"<encoder>-d[-mle|-np][-att] with encoder in {encoders}"
    )


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

"""A model variant by name (the paper's table rows): what G and D are built from.

Names follow the paper's tables: ``<encoder>-g[-mle]`` is a generative model trained with MLE
(``hciae-g-mle`` = HCIAE-G-MLE, ``lf-g`` = LF-G); ``<encoder>-d[-mle|-np][-att]`` is a
discriminative one, trained with softmax cross-entropy over the options (``-mle`` or nothing, the
"D-MLE" of the paper and the Das et al. baselines) or the N-pair loss (``-np``, Eq. 4), with the
self-attentive answer encoder when ``-att`` ends the name. The encoder is chosen from the
registry ``pipeline.models.encoders.ENCODERS``.

It lives below G (``generator``), D (``discriminator``) and ``variants`` (which builds either
from a name), so that each of them imports it and none imports another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import InputError
from pipeline.models.encoders import ENCODERS


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

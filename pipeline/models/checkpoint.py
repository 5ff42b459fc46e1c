"""Loading published model checkpoints (``models/<variant>/{best,last}.pt``) safely.

A checkpoint is a dict of plain types: ``model`` (state dict), ``meta`` (``variant``, ``arch``,
``vocab_size`` and the ``model:`` params it was built with; see
``pipeline.models.variants.model_meta``),
``epoch``, ``history`` (per-epoch metrics) and ``best``. It is always read with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config import ModelConfig
from pipeline.errors import InputError
from pipeline.models.variants import build_model


def load_checkpoint(path: str | Path, meta: dict | None = None) -> dict:
    """Load a checkpoint; when ``meta`` is given, refuse one whose ``meta`` differs."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found (train the model first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise InputError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or "meta" not in state:
        raise InputError(f"{path}: not a model checkpoint of this project")
    if meta is not None:
        theirs = state["meta"]
        diff = sorted(k for k in set(meta) | set(theirs) if meta.get(k) != theirs.get(k))
        if diff:
            k = diff[0]
            raise InputError(
                f"{path}: checkpoint does not match the current settings: {k} is "
                f"{theirs.get(k)!r} there, {meta.get(k)!r} here"
            )
    return state


def load_model(path: str | Path, meta: dict | None = None, **kwargs):
    """Rebuild the model a checkpoint was saved from and load its weights (eval mode).

    ``kwargs`` go to :func:`pipeline.models.variants.build_model` (e.g. ``negatives``, ``l2``).
    """
    state = load_checkpoint(path, meta)
    m = state["meta"]
    cfg = ModelConfig(
        embed_dim=m["embed_dim"], hidden=m["hidden"], dropout=m["dropout"],
        image_norm=m.get("image_norm", "none"),
    )  # fmt: skip
    model = build_model(m.get("arch", m["variant"]), m["vocab_size"], cfg, **kwargs)
    model.load_state_dict(state["model"])
    return model.eval()

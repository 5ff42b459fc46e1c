"""``visdial features``: VGG-19 pool5 features of every image of every split (data/features)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import InputError
from pipeline.features import extract_features
from stages.common import user_errors
from stages.params import load_params


def _opt(help: str):
    return typer.Option(help=help)


@user_errors
def main(
    prepared: Annotated[Path, _opt("Output of prepare (its image_ids.h5).")] = Path(
        "data/prepared"
    ),
    images: Annotated[Path | None, _opt("Image directory [default: data.images].")] = None,
    out: Annotated[Path, _opt("Output directory (one <split>.h5 each).")] = Path("data/features"),
    weights: Annotated[str | None, _opt("imagenet | random | PATH to a state dict.")] = None,
    pattern: Annotated[list[str] | None, _opt("SPLIT=PATTERN, e.g. train=a/A_%012d.jpg.")] = None,
    device: Annotated[str | None, _opt("auto | cpu | cuda | cuda:N.")] = None,
    batch_size: Annotated[int | None, _opt("Images per forward pass.")] = None,
    on_error: Annotated[str | None, _opt("Bad images: fail | skip (zeros, valid=0).")] = None,
) -> None:
    """VGG-19 pool5 image features (512x7x7 at 224x224), one HDF5 file per split.

    Settings not given here come from params.yaml (features:, data.images). Under
    `torchrun --nproc_per_node=K -m stages features ...` the images are sharded across ranks.
    """
    params = load_params()
    patterns = dict(params.features.patterns)
    for item in pattern or []:
        split, sep, value = item.partition("=")
        if not sep or not split:
            raise InputError(f"--pattern {item!r}: expected SPLIT=PATTERN")
        patterns[split] = value
    given = {"weights": weights, "device": device, "batch_size": batch_size, "on_error": on_error}
    overrides = {k: v for k, v in given.items() if v is not None}
    cfg = dataclasses.replace(params.features, patterns=patterns, **overrides)
    summary = extract_features(prepared / "image_ids.h5", images or params.data.images, out, cfg)
    for split, info in summary.items():
        print(
            f"features {split}: {info['images']} rows ({info['unique']} unique images,"
            f" {info['invalid']} invalid) -> {out / (split + '.h5')}"
        )

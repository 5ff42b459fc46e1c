"""``visdial features``: VGG-19 pool5 features of every image of every split (data/features)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pipeline.errors import InputError
from pipeline.features.extract import extract_features
from stages.common import opt, run_command, user_errors
from stages.params import load_params, with_options


@user_errors
def main(
    prepared: Annotated[Path, opt("Output of prepare (its image_ids.h5).")],
    out: Annotated[Path, opt("Output directory (one <split>.h5 each).")],
    resume: Annotated[Path, opt("Work in progress of an interrupted run (not an output).")],
    images: Annotated[Path | None, opt("Image directory [default: data.images].")] = None,
    weights: Annotated[str | None, opt("imagenet | dirac | random | PATH to a state dict.")] = None,
    pattern: Annotated[list[str] | None, opt("SPLIT=PATTERN, e.g. train=a/A_%012d.jpg.")] = None,
    device: Annotated[str | None, opt("auto | cpu | cuda | cuda:N.")] = None,
    batch_size: Annotated[int | None, opt("Images per forward pass.")] = None,
    on_error: Annotated[str | None, opt("Bad images: fail | skip (zeros, valid=0).")] = None,
) -> None:
    """VGG-19 pool5 image features (512x7x7 at 224x224), one HDF5 file per split.

    Settings not given here come from params.yaml (features:, data.images). Under
    `torchrun --nproc_per_node=K -m stages.features ...` the images are sharded across ranks.
    """
    params = load_params()
    patterns = dict(params.features.patterns)
    for item in pattern or []:
        split, sep, value = item.partition("=")
        if not sep or not split:
            raise InputError(f"--pattern {item!r}: expected SPLIT=PATTERN")
        patterns[split] = value
    cfg = with_options(
        params.features, "features", patterns=patterns, weights=weights, device=device,
        batch_size=batch_size, on_error=on_error,
    )  # fmt: skip
    image_dir = images or params.data.images
    summary = extract_features(prepared / "image_ids.h5", image_dir, out, cfg, partial_dir=resume)
    for split, info in summary.items():
        print(
            f"features {split}: {info['images']} rows ({info['unique']} unique images,"
            f" {info['invalid']} invalid) -> {out / (split + '.h5')}"
        )


if __name__ == "__main__":
    run_command(main)

"""`visdial demo-data`: write the procedurally generated demo dataset (VisDial v0.9 JSON + PNGs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from pipeline.demo.generate import generate_demo
from stages.common import run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    out: Annotated[
        Path, typer.Option(help="Output directory; replaced as a whole (e.g. data/demo).")
    ],
    seed: Annotated[int | None, typer.Option(help="Random seed (demo.seed).")] = None,
    train_dialogs: Annotated[
        int | None, typer.Option(help="Dialogs (= images) in the train split (demo.train_dialogs).")
    ] = None,
    val_dialogs: Annotated[
        int | None, typer.Option(help="Dialogs (= images) in the val split (demo.val_dialogs).")
    ] = None,
) -> None:
    """Generate the demo dataset: 2-D shape scenes with captions and 10-round dialogs.

    Writes OUT/visdial_0.9_train.json, OUT/visdial_0.9_val.json and OUT/images/. The same seed
    gives byte-identical files. Settings not given here come from params.yaml (demo.*).
    """
    cfg = load_params().demo
    given = {"seed": seed, "train_dialogs": train_dialogs, "val_dialogs": val_dialogs}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in given.items() if v is not None})
    summary = generate_demo(
        out, cfg, progress=lambda scenes: track(scenes, description="drawing images")
    )
    typer.echo(f"wrote {out}: {summary}")


if __name__ == "__main__":
    run_command(main)

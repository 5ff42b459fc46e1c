"""What `visdial train-g` and `visdial train-d` share: options and the call into the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.pretrain import pretrain
from pipeline.train import RunFiles
from stages.params import load_params

Variant = Annotated[str, typer.Option(help="Model variant, e.g. hciae-g-mle or hciae-d-np-att.")]
Prepared = Annotated[Path, typer.Option(help="Output of the prepare stage.")]
Features = Annotated[Path, typer.Option(help="Output of the features stage.")]


def run(section: str, variant: str, prepared: Path, features: Path) -> None:
    """Train ``variant`` with the settings of params section ``section`` (train_g / train_d)."""
    params = load_params()
    files = RunFiles(
        ckpt_dir=Path("checkpoints") / variant,
        out_dir=Path("models") / variant,
        live_dir=Path("live") / variant,
    )
    history = pretrain(variant, getattr(params, section), params.model, prepared, features, files)
    if history:
        last = history[-1]
        summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "epoch")
        typer.echo(f"{variant}: epoch {last['epoch']}: {summary}; wrote {files.out_dir}")

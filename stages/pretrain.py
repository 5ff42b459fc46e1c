"""`visdial train-g` / `visdial train-d`: the one pretraining command, for G's or D's section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import InputError
from pipeline.models.variant import Variant
from pipeline.training.loop import RunFiles
from pipeline.training.pretrain import pretrain
from stages.common import opt, user_errors
from stages.params import load_params

VariantOpt = Annotated[str, opt("Model variant, e.g. hciae-g-mle or hciae-d-np-att.")]
Prepared = Annotated[Path, opt("Output of the prepare stage.")]
Features = Annotated[Path, opt("Output of the features stage.")]
Out = Annotated[Path, opt("Where best.pt and last.pt go, e.g. models/VARIANT.")]
Live = Annotated[Path, opt("The log (metrics.json) + curves.png, e.g. live/VARIANT.")]
Resume = Annotated[Path, opt("Resumable state (not an output), e.g. .resume/VARIANT.")]


def command(section: str, summary: str) -> Callable[..., None]:
    """The command that pretrains a variant with the settings of ``section`` (train_g/train_d)."""
    kind = section[-1]  # "g" | "d"

    @user_errors
    def main(
        variant: VariantOpt, prepared: Prepared, features: Features, out: Out, live: Live,
        resume: Resume,
    ) -> None:  # fmt: skip
        if Variant.parse(variant).kind != kind:
            other = "train-d" if kind == "g" else "train-g"
            raise InputError(f"--variant {variant}: not a {kind.upper()} variant (use {other})")
        params = load_params()
        files = RunFiles(resume_dir=resume, out_dir=out, live_dir=live)
        cfg = getattr(params, section)
        history = pretrain(variant, cfg, params.model, prepared, features, files)
        if history:
            last = history[-1]
            summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "epoch")
            typer.echo(f"{variant}: epoch {last['epoch']}: {summary}; wrote {out}")

    main.__doc__ = f"""{summary}

    Settings come from params.yaml (model.*, {section}.*). Writes OUT/{{best,last}}.pt, the
    log (metrics.json) + curves.png in LIVE, and resumable state in RESUME (a rerun after an
    interruption continues after the last finished epoch). Runs under
    `torchrun --nproc_per_node=K -m stages.{section} ...` with DistributedDataParallel too.
    """
    return main

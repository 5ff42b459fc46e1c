"""`visdial gallery`: test dialogs with G-MLE's, G-DIS's and D's answers and HCIAE's attention."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.evaluation.gallery import build_gallery
from pipeline.runtime import resolve_device
from stages.common import opt, run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    models: Annotated[Path, opt("Directory of published models (MODELS/VARIANT/best.pt).")],
    prepared: Annotated[Path, opt("Output of the prepare stage.")],
    features: Annotated[Path, opt("Output of the features stage.")],
    images: Annotated[Path, opt("The image folder (data.images).")],
    out: Annotated[Path, opt("The page to write (self-contained HTML).")],
    figure: Annotated[Path, opt("PNG of one round's attention maps (for report/README.md).")],
) -> None:
    """Write OUT: report.samples test dialogs, each round with the human answer, G-MLE's and
    G-DIS's greedy, beam and Gumbel-noise answers, D's top-5 options, and HCIAE's image and
    history attention; and FIGURE, one round's image attention as a PNG.

    Settings: params.yaml report.* (g_mle, g_dis, discriminator, samples, noises, beam_size,
    seed, device) and features.patterns.test. Models not trained are left out and named.
    """
    params = load_params()
    cfg = params.report
    result = build_gallery(
        cfg, prepared=prepared, features=features, models_dir=models, images=images,
        pattern=params.features.patterns["test"], out=out, figure=figure,
        device=resolve_device(cfg.device),
    )  # fmt: skip
    if result["missing"]:
        typer.echo(f"note: not trained, left out: {', '.join(result['missing'])}")
    typer.echo(f"wrote {out} ({result['dialogs']} dialogs) and {figure}")


if __name__ == "__main__":
    run_command(main)

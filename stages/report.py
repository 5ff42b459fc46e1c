"""`visdial report`: tables, qualitative samples, diversity and plots in report/README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.evaluation.compare import Resampling
from pipeline.evaluation.report import build_report
from pipeline.runtime import resolve_device
from stages.common import opt, run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    models: Annotated[Path, opt("Directory of published models (MODELS/VARIANT/best.pt).")],
    metrics: Annotated[Path, opt("Output directory of the evaluate stages.")],
    live: Annotated[Path, opt("Training logs (LIVE/VARIANT/curves.png).")],
    prepared: Annotated[Path, opt("Output of the prepare stage.")],
    features: Annotated[Path, opt("Output of the features stage.")],
    out: Annotated[Path, opt("Report directory.")],
    comparisons: Annotated[
        Path | None, opt("The compare stage's JSON (the claims table; none: no table).")
    ] = None,
    image_use: Annotated[
        Path | None, opt("The compare stage's image-use JSON (none: no such table).")
    ] = None,
    seeds: Annotated[
        Path | None, opt("visdial seeds' JSON: each verdict's k of n runs (absent: not run).")
    ] = None,
    pages: Annotated[
        Path | None,
        opt("Where README.md and samples.json go (default OUT); their links are relative to OUT."),
    ] = None,
) -> None:
    """Write OUT/README.md: the claims table (from COMPARISONS; each verdict's k of n seed runs
    from SEEDS), Tables 1/2/4, Table-3 samples, answer diversity (G-DIS − G-MLE with a bootstrap
    CI over dialogs), plots.

    Reads METRICS/*.json, MODELS/<g_mle|g_dis>/best.pt and LIVE/*/curves.png; also writes
    OUT/samples.json, OUT/diversity.json, OUT/metrics.png and OUT/diversity.png. With PAGES,
    README.md and samples.json go there (dvc.yaml: DVC-cached, copied to OUT by `publish`).

    Settings: params.yaml report.*. Missing variants or models are reported, not fatal.
    """
    params = load_params()
    cfg, how = params.report, params.compare
    result = build_report(
        cfg, prepared=prepared, features=features, models_dir=models, metrics_dir=metrics,
        live_dir=live, out_dir=out, device=resolve_device(cfg.device), comparisons=comparisons,
        resampling=Resampling(resamples=how.resamples, seed=how.seed, level=how.level),
        image_use=image_use, seeds=seeds, pages_dir=pages,
    )  # fmt: skip
    for kind in ("missing_metrics", "missing_models"):
        if result[kind]:
            typer.echo(f"note: {kind.replace('_', ' ')}: {', '.join(result[kind])}")
    typer.echo(f"wrote {(pages or out) / 'README.md'}")


if __name__ == "__main__":
    run_command(main)

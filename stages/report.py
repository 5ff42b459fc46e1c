"""`visdial report`: tables, qualitative samples, diversity and plots in report/README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.report import build_report
from pipeline.runtime import resolve_device
from stages.common import user_errors
from stages.params import load_params


def _opt(help: str):
    return typer.Option(help=help)


@user_errors
def main(
    models: Annotated[Path, _opt("Directory of published models.")] = Path("models"),
    metrics: Annotated[Path, _opt("Output of the evaluate stages.")] = Path("metrics"),
    live: Annotated[Path, _opt("dvclive directories (training curves).")] = Path("live"),
    prepared: Annotated[Path, _opt("Output of the prepare stage.")] = Path("data/prepared"),
    features: Annotated[Path, _opt("Output of the features stage.")] = Path("data/features"),
    out: Annotated[Path, _opt("Report directory.")] = Path("report"),
) -> None:
    """Write report/README.md: Tables 1/2/4, Table-3 samples, answer diversity, plots.

    Reads metrics/*.json, models/<g_mle|g_dis>/best.pt and live/*/curves.png; also writes
    report/samples.json, report/diversity.json, report/metrics.png, report/diversity.png.

    Settings: params.yaml report.*. Missing variants or models are reported, not fatal.
    """
    cfg = load_params().report
    result = build_report(
        cfg, prepared=prepared, features=features, models_dir=models, metrics_dir=metrics,
        live_dir=live, out_dir=out, device=resolve_device(cfg.device),
    )  # fmt: skip
    for kind in ("missing_metrics", "missing_models"):
        if result[kind]:
            typer.echo(f"note: {kind.replace('_', ' ')}: {', '.join(result[kind])}")
    typer.echo(f"wrote {out / 'README.md'}")

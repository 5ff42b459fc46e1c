"""`visdial evaluate`: rank the 100 options of every val round with one trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.evaluate import evaluate_model
from stages.common import user_errors
from stages.params import load_params


def _opt(help: str):
    return typer.Option(help=help)


@user_errors
def main(
    variant: Annotated[str, _opt("Model to evaluate: models/VARIANT/best.pt.")],
    models: Annotated[Path, _opt("Directory of published models.")] = Path("models"),
    prepared: Annotated[Path, _opt("Output of the prepare stage.")] = Path("data/prepared"),
    features: Annotated[Path, _opt("Output of the features stage.")] = Path("data/features"),
    metrics: Annotated[Path, _opt("Where metrics/VARIANT.json goes.")] = Path("metrics"),
    predictions: Annotated[Path, _opt("Where the test ranks go.")] = Path("predictions"),
) -> None:
    """Rank the 100 options of every val round with models/VARIANT/best.pt (Tables 1, 2, 4).

    Writes val MRR, R@1/5/10 (fractions), mean rank (+ NDCG with dense annotations) to
    metrics/VARIANT.json, and the v1.0 test ranks in the evaluation-server format to
    predictions/VARIANT_test_ranks.json ([] without a test split).

    G ranks by summed log-likelihood (incl. <end>), D by its score. Settings: params.yaml
    evaluate.* (batch_size, device, precision).
    """
    cfg = load_params().evaluate
    result = evaluate_model(
        models / variant / "best.pt", prepared, features,
        metrics / f"{variant}.json", predictions / f"{variant}_test_ranks.json",
        batch_size=cfg.batch_size, device=cfg.device, precision=cfg.precision,
    )  # fmt: skip
    summary = ", ".join(f"{k} {v:.4g}" for k, v in result.items())
    typer.echo(f"{variant}: {summary}; wrote {metrics / (variant + '.json')}")

"""`visdial evaluate`: rank the 100 options of every test round with one trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.evaluation.evaluate import evaluate_model
from stages.common import opt, run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    model: Annotated[Path, opt("Checkpoint to evaluate, e.g. models/VARIANT/best.pt.")],
    prepared: Annotated[Path, opt("Output of the prepare stage.")],
    features: Annotated[Path, opt("Output of the features stage.")],
    metrics: Annotated[Path, opt("Metrics JSON to write, e.g. metrics/VARIANT.json.")],
    ranks: Annotated[Path, opt("Challenge ranks JSON to write (evaluation-server format).")],
    rounds: Annotated[Path, opt("Per-round CSV to write: predictions/VARIANT_test_rounds.csv.")],
) -> None:
    """Rank the 100 options of every test round with MODEL (Tables 1, 2, 4).

    Writes test MRR, R@1/5/10 (fractions), mean rank (+ NDCG with dense annotations) to
    METRICS, one row per test round (image_id, round_id, rank, rr, r1, r5, r10 [, ndcg]; the
    metrics are its column means) to ROUNDS, and the v1.0 test-std (challenge) ranks in the
    evaluation-server format to RANKS ([] without a challenge split). Model selection never
    read the test split.

    With evaluate.shuffled_images, every round is scored a second time with the next dialog's
    image (column rr_shuffled, metric mrr_shuffled_images): does the model use the image?

    G ranks by summed log-likelihood (incl. <end>), D by its score. Settings: params.yaml
    evaluate.* (batch_size, device, precision, shuffled_images).
    """
    cfg = load_params().evaluate
    result = evaluate_model(
        model, prepared, features, metrics, ranks, rounds,
        batch_size=cfg.batch_size, device=cfg.device, precision=cfg.precision,
        shuffled_images=cfg.shuffled_images,
    )  # fmt: skip
    summary = ", ".join(f"{k} {v:.4g}" for k, v in result.items())
    typer.echo(f"{model}: {summary}; wrote {metrics}")


if __name__ == "__main__":
    run_command(main)

"""`visdial compare`: paired differences between variants on the test rounds, with 95 % CIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.atomic import write_json
from pipeline.evaluation.compare import Resampling, compare_variants
from pipeline.evaluation.compare import image_use as image_use_of
from stages.common import opt, run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    predictions: Annotated[Path, opt("The evaluate stages' directory of V_test_rounds.csv.")],
    out: Annotated[Path, opt("Comparisons JSON to write, e.g. report/comparisons.json.")],
    image_use: Annotated[
        Path | None, opt("JSON to write: each model's MRR with its own vs another image.")
    ] = None,
) -> None:
    """For each [A, B] of compare.pairs: A − B on MRR, R@1/5/10, mean rank (and NDCG) over the
    test rounds, a paired bootstrap 95 % CI over dialogs, a sign-flip permutation p-value and a
    verdict against the paper's difference (reproduced / not significant / contradicted).

    IMAGE_USE gets, for every model scored with evaluate.shuffled_images, MRR with each
    dialog's own image minus MRR with the next dialog's, with its CI and a verdict.

    Reads PREDICTIONS/<V>_test_rounds.csv; a pair with a missing file is listed as missing.
    Settings: params.yaml compare.* (pairs, resamples, seed, level).
    """
    cfg = load_params().compare
    how = Resampling(resamples=cfg.resamples, seed=cfg.seed, level=cfg.level)
    result = compare_variants(cfg.pairs, predictions, how)
    write_json(out, result)
    for name, row in result.items():
        if "missing" in row:
            typer.echo(f"{name}: missing {', '.join(row['missing'])}")
            continue
        mrr = row["mrr"]
        ci = "no CI" if mrr["ci_low"] is None else f"[{mrr['ci_low']:+.4f}, {mrr['ci_high']:+.4f}]"
        p = "" if mrr["p"] is None else f" p={mrr['p']:.3g}"
        typer.echo(f"{name}: MRR {mrr['delta']:+.4f} {ci}{p} ({mrr['verdict']})")
    typer.echo(f"wrote {out}")
    if image_use is not None:
        used = image_use_of(predictions, how)
        write_json(image_use, used)
        for name, row in used.items():
            typer.echo(f"{name}: MRR own − shuffled images {row['delta']:+.4f} ({row['verdict']})")
        typer.echo(f"wrote {image_use}")


if __name__ == "__main__":
    run_command(main)

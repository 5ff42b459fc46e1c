"""`visdial seeds`: mean ± std over seeds (DVC experiments) of every metric and claim."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from pipeline.atomic import atomic_path, write_json
from pipeline.errors import InputError
from pipeline.evaluation.seeds import runs_from_exp_show, seeds_markdown, summarize
from stages.common import opt, run_command, user_errors


def exp_show() -> list:
    """``dvc exp show --json`` of the repository in the current directory."""
    try:
        proc = subprocess.run(
            ["dvc", "exp", "show", "--json"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise InputError("dvc not found: run inside the project's environment") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"dvc exp show --json failed: {last}")
    return json.loads(proc.stdout)


@user_errors
def main(
    out: Annotated[Path, opt("Markdown to write, e.g. report/seeds.md (and .json beside it).")],
    exp_show_json: Annotated[
        Path | None, opt("A saved `dvc exp show --json` to read instead of running it.")
    ] = None,
) -> None:
    """Summarise DVC experiments that differ in seeds: mean ± std (n) of every variant's test
    metrics and of every claim's Δ, and in how many seeds each claim was reproduced.

    Queue the seeds first (docs/evaluation.md): dvc exp run --queue -S train_g.seed=S
    -S train_d.seed=S -S transfer.seed=S, for each S; dvc queue start -j 1.
    """
    if exp_show_json is None:
        doc = exp_show()
    else:
        try:
            doc = json.loads(exp_show_json.read_text())
        except (OSError, json.JSONDecodeError):
            raise InputError(f"{exp_show_json}: not the JSON of dvc exp show --json") from None
    runs = runs_from_exp_show(doc)
    if not runs:
        raise InputError("no experiment with metrics found (run dvc exp run / dvc queue first)")
    summary = summarize(runs)
    write_json(out.with_suffix(".json"), summary)
    with atomic_path(out) as tmp:
        tmp.write_text(seeds_markdown(summary))
    typer.echo(f"{len(runs)} run(s); wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    run_command(main)

"""`visdial check-params`: validate the whole params.yaml before any stage touches an output.

The first DVC stage: every other stage depends on its output, so a typo anywhere in
params.yaml (an unknown key, a wrong type, a value out of range) stops ``dvc repro`` before DVC
deletes a single output of a stage that would have rerun. Its output never changes while the
params are valid, so passing the check reruns nothing downstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.atomic import write_json
from pipeline.demo.generate import check_demo_config
from stages.common import opt, run_command, user_errors
from stages.params import PARAMS_FILE, load_params


@user_errors
def main(
    out: Annotated[Path, opt("Marker to write when every key is valid, e.g. checks/params.json.")],
) -> None:
    """Validate every section and key of params.yaml (names, types, ranges) and write OUT."""
    params = load_params()
    check_demo_config(params.demo)
    write_json(out, {"params.yaml": "valid"})  # constant: downstream stages see no change
    typer.echo(f"{PARAMS_FILE}: valid")


if __name__ == "__main__":
    run_command(main)

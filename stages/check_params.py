"""`visdial check-params`: validate the whole params.yaml before any stage touches an output.

The first DVC stage: every other stage depends on its output, so a typo anywhere in
params.yaml (an unknown key, a wrong type, a value out of range) stops ``dvc repro`` before DVC
deletes a single output of a stage that would have rerun. So does every ``data.*`` path that
``prepare`` or ``features`` would refuse (outside ``data.dir``, not found, a malformed
``features.patterns`` entry); files the demo_data stage is yet to write need not exist. Its output
never changes while the params are valid, so passing the check reruns nothing downstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.atomic import write_json
from pipeline.config import check_data_paths, check_features_config, check_pattern_splits
from pipeline.demo.generate import IMAGE_DIR, JSON_NAME, MEANINGS_NAME, SPLITS, check_demo_config
from stages.common import opt, run_command, user_errors
from stages.params import PARAMS_FILE, load_params

# what the demo_data stage writes into each folder of demo.dirs
DEMO_FILES = (*(JSON_NAME.format(split=s) for s in SPLITS), MEANINGS_NAME, IMAGE_DIR)


@user_errors
def main(
    out: Annotated[Path, opt("Marker to write when every key is valid, e.g. checks/params.json.")],
) -> None:
    """Validate every section and key of params.yaml (names, types, ranges, data.* paths)."""
    params = load_params()
    check_demo_config(params.demo)
    check_features_config(params.features)
    check_pattern_splits(params.features, params.data)
    check_data_paths(params.data, dict.fromkeys(params.demo.dirs, DEMO_FILES), str(PARAMS_FILE))
    write_json(out, {"params.yaml": "valid"})  # constant: downstream stages see no change
    typer.echo(f"{PARAMS_FILE}: valid")


if __name__ == "__main__":
    run_command(main)

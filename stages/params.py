"""Read ``params.yaml`` once, at the stage boundary, into ``pipeline.config.Params``."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.config import Params
from pipeline.errors import InputError

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Parse and validate ``path``; a missing file means all defaults."""
    path = Path(path)
    if not path.exists():
        return Params()
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}") from None
    return Params.from_mapping(raw, str(path))

"""Read ``params.yaml`` once, at the stage boundary, into ``pipeline.config.Params``."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipeline.config import Params, from_mapping
from pipeline.errors import InputError

PARAMS_FILE = Path("params.yaml")


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false, not yes/no/on/off.

    DVC reads and rewrites params.yaml as YAML 1.2 (``dvc exp run -S`` drops the quotes around
    "no"), which YAML 1.1 loaders would then read as False.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(path: str | Path) -> object:
    """A YAML file as DVC reads it (YAML 1.2 booleans); the one reader of ``params.yaml``."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_Yaml12Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}") from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Parse and validate ``path``; a missing file means all defaults."""
    path = Path(path)
    if not path.exists():
        return Params()
    return Params.from_mapping(read_yaml(path), str(path))


def with_options(cfg, section: str, **given):
    """A params section with the command-line options that were given (not None) on top,
    validated like params.yaml (``--on-error maybe`` names ``features.on_error``)."""
    given = {k: v for k, v in given.items() if v is not None}
    return from_mapping(type(cfg), given, "command line", f"{section}.", cfg)

"""The ``visdial`` command: every DVC stage as a subcommand (``visdial prepare …``).

``python -m stages …`` is the same app.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Best of Both Worlds (Lu et al., NeurIPS 2017): visual dialog pipeline stages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (subcommand, module) in pipeline order, then the tools; each module defines ``main``.
COMMANDS = [
    ("check-params", "stages.check_params"),
    ("demo-data", "stages.demo_data"),
    ("prepare", "stages.prepare"),
    ("features", "stages.features"),
    ("train-g", "stages.train_g"),
    ("train-d", "stages.train_d"),
    ("transfer", "stages.transfer"),
    ("evaluate", "stages.evaluate"),
    ("compare", "stages.compare"),
    ("report", "stages.report"),
    ("gallery", "stages.gallery"),
    ("publish", "stages.publish"),
    ("seeds", "stages.seeds"),
    ("chat", "stages.chat"),
    ("answer", "stages.answer"),
    ("serve", "stages.serve"),
    ("plots-page", "stages.plots_page"),
]

for _name, _module in COMMANDS:
    _main = importlib.import_module(_module).main
    app.command(_name, help=_main.__doc__)(_main)


def main() -> None:  # console-script entry point
    app()

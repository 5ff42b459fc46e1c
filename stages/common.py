"""What every stage command shares: options, user errors as one line and exit code 1, and
running one command as a module (``python -m stages.prepare …``, the way ``dvc.yaml`` calls
it, so that a stage imports its own code and nothing else)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer
from typer.models import OptionInfo

from pipeline.errors import InputError

F = TypeVar("F", bound=Callable)


def user_errors(fn: F) -> F:
    """Decorate a command so that an ``InputError`` prints ``error: <message>`` and exits 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def opt(help: str) -> OptionInfo:
    """A Typer option with its help text: ``Annotated[Path, opt("…")]``."""
    return typer.Option(help=help)


def run_command(main: Callable) -> None:
    """Run one stage command as a program (its module's ``if __name__ == "__main__":``)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(help=main.__doc__)(main)
    app()

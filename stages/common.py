"""What every stage command shares: turning user errors into one line and exit code 1."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

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

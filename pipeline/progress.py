"""Progress bars (rich) with rate and ETA, shared by the long-running stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``12.3 batch/s``."""

    def __init__(self, unit: str = "it"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {self.unit}/s" if speed else f"? {self.unit}/s")


class Bar:
    """One task of a live bar: ``advance(n)`` moves it (``completed`` counts), ``describe(text)``
    relabels it (kept in ``description``), ``resize(total)`` changes its total."""

    def __init__(self, progress: Progress, task: TaskID, description: str):
        self._progress, self._task = progress, task
        self.description, self.completed = description, 0

    def advance(self, n: int = 1) -> None:
        self.completed += n
        self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        self.description = text
        self._progress.update(self._task, description=text)

    def resize(self, total: int | None) -> None:
        self._progress.update(self._task, total=total)


def _columns(unit: str, elapsed: bool) -> tuple[ProgressColumn, ...]:
    """Label, bar, n/total, rate[, elapsed] and ETA."""
    time = (TimeElapsedColumn(), TimeRemainingColumn()) if elapsed else (TimeRemainingColumn(),)
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
            *time)  # fmt: skip


@contextmanager
def live_bar(
    total: int | None,
    label: str,
    unit: str = "it",
    enabled: bool = True,
    console: Console | None = None,
) -> Iterator[Bar]:
    """``with live_bar(n, "train") as bar: ... bar.advance(); bar.describe("epoch 2/9")``.

    One bar for a whole run, with elapsed time and ETA; ``console``: rich's default (stdout).
    """
    with Progress(*_columns(unit, elapsed=True), disable=not enabled, console=console) as progress:
        yield Bar(progress, progress.add_task(label, total=total), label)


@contextmanager
def progress_bar(
    total: int | None, label: str, unit: str = "it", enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """``with progress_bar(n, "epoch 1") as advance: ... advance(1)``."""
    with Progress(*_columns(unit, elapsed=False), disable=not enabled) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)

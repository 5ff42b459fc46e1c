"""Progress bars (rich) with rate and ETA, shared by the long-running stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
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


@contextmanager
def progress_bar(
    total: int | None, label: str, unit: str = "it", enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """``with progress_bar(n, "epoch 1") as advance: ... advance(1)``."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not enabled) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)

"""The rich progress bars of pipeline/progress.py."""

from __future__ import annotations

import io
import re

from rich.console import Console

from pipeline.progress import live_bar, progress_bar


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, color_system=None, width=200), out


def last_line(out: io.StringIO) -> str:
    """What the terminal shows last: the final redraw of the bar, control codes removed."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    return re.split(r"[\r\n]+", text.strip())[-1]


def test_live_bar_relabels_resizes_and_shows_elapsed_and_eta():
    console, out = terminal()
    with live_bar(None, "toy epoch 1/2", "batch", console=console) as bar:
        bar.resize(4)
        for i in range(3):
            bar.advance()
            bar.describe(f"toy epoch 1/2 loss {i}")
    assert bar.completed == 3 and bar.description == "toy epoch 1/2 loss 2"
    line = last_line(out)
    assert line.startswith("toy epoch 1/2 loss 2 ") and " 3/4 " in line and "batch/s" in line
    assert re.search(r"\d:\d\d:\d\d \d:\d\d:\d\d$", line), line  # elapsed, then remaining


def test_disabled_bars_print_nothing_and_progress_bar_still_yields_advance():
    console, out = terminal()
    with live_bar(2, "quiet", enabled=False, console=console) as bar:
        bar.advance(2)
        bar.describe("still quiet")
    assert out.getvalue() == "" and bar.completed == 2
    with progress_bar(3, "old style", enabled=False) as advance:
        advance()
        advance(2)

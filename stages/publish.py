"""``visdial publish``: copy the report's pages from their DVC-cached originals into report/.

DVC saves a stage in its run-cache only when every output is cached or a metrics or plots file
(an ``outs`` entry with ``cache: false`` turns it off: DVC pull request #8738). The pages that
``main`` commits to git (report/README.md, samples.json, gallery.html) cannot be cached outputs,
so the ``report`` and ``gallery`` stages write cached originals to report/cached/, and a return
to earlier params restores them from the run-cache instead of rerunning them; this stage, a
copy, puts them where git and readers find them. It has no run-cache itself and reruns (in
well under a second) whenever a page changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from pipeline.atomic import atomic_path
from pipeline.errors import InputError
from stages.common import opt, run_command, user_errors


@user_errors
def main(
    pages: Annotated[list[Path], typer.Argument(help="Files to copy (report/cached/…).")],
    to: Annotated[Path, opt("Directory to copy them into (report).")],
) -> None:
    """Copy each of PAGES into TO (same name, written atomically)."""
    for page in pages:
        if not page.is_file():
            raise InputError(f"{page}: not found (run the report and gallery stages first)")
    for page in pages:
        with atomic_path(to / page.name) as tmp:
            shutil.copyfile(page, tmp)
        typer.echo(f"wrote {to / page.name}")


if __name__ == "__main__":
    run_command(main)

"""``visdial plots-page``: write the offline template that ``dvc plots show`` uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.plots_page import write_offline_template
from stages.common import opt, run_command, user_errors

DEFAULT = Path(".dvc/offline-plots.html")  # .dvc/config: plots.html_template = offline-plots.html


@user_errors
def main(out: Annotated[Path, opt("Template to write.")] = DEFAULT) -> None:
    """Write OUT: a `dvc plots show` page template with Vega, Vega-Lite and Vega-Embed inside,
    so that the plots render without a network (scripts/setup runs this)."""
    typer.echo(f"wrote {write_offline_template(out)}")


if __name__ == "__main__":
    run_command(main)

"""``visdial plots-page``: write the offline template that ``dvc plots show`` uses, and name it in
``.dvc/config.local``.

The setting lives in the gitignored ``config.local`` (DVC merges it over the committed
``.dvc/config``), written together with the page: a clone that never ran ``scripts/setup`` has
neither, and ``dvc plots show`` uses DVC's default page (Vega from a CDN) instead of failing on
a template that is not there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipeline.errors import InputError
from pipeline.plots_page import write_offline_template
from stages.common import opt, run_command, user_errors

DEFAULT = Path(".dvc/offline-plots.html")


def register(page: Path, dvc_dir: Path = Path(".dvc")) -> None:
    """Set ``plots.html_template`` to ``page`` in ``dvc_dir/config.local`` (DVC stores it
    relative to ``dvc_dir``)."""
    if not dvc_dir.is_dir():
        raise InputError(f"{dvc_dir}: not found (run from the repository root, or --no-register)")
    from dvc.config import Config  # only here: importing DVC takes a while

    relative = os.path.relpath(page.resolve(), dvc_dir.resolve())  # moves with the clone
    with Config(dvc_dir=str(dvc_dir), validate=False).edit("local") as conf:
        conf.setdefault("plots", {})["html_template"] = relative


@user_errors
def main(
    out: Annotated[Path, opt("Template to write.")] = DEFAULT,
    register_page: Annotated[
        bool, typer.Option("--register/--no-register", help="Name OUT in .dvc/config.local.")
    ] = True,
) -> None:
    """Write OUT: a `dvc plots show` page template with Vega, Vega-Lite and Vega-Embed inside,
    so that the plots render without a network, and name it in .dvc/config.local
    (plots.html_template; scripts/setup runs this)."""
    typer.echo(f"wrote {write_offline_template(out)}")
    if register_page:
        register(out)
        typer.echo(f"set plots.html_template = {out} in .dvc/config.local")


if __name__ == "__main__":
    run_command(main)

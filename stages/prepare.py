"""`visdial prepare`: tokenize VisDial JSON, build the vocabulary, write vocab.json + dialogs.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from pipeline.data.prepare import prepare
from pipeline.data.visdial import read_dense, read_visdial
from stages.common import run_command, user_errors
from stages.params import load_params

FileOpt = Annotated[
    str | None, typer.Option(help="VisDial JSON file (default: params.yaml data.*).")
]


@user_errors
def main(
    out: Annotated[Path, typer.Option(help="Output directory, e.g. data/prepared.")],
    train: FileOpt = None,
    val: FileOpt = None,
    test: FileOpt = None,
    dense: Annotated[
        str | None, typer.Option(help="v1.0 dense annotations for the val split ('' = none).")
    ] = None,
    min_count: Annotated[
        int | None, typer.Option(help="Keep train words seen at least N times (prepare.min_count).")
    ] = None,
) -> None:
    """Tokenize dialogs and build the vocabulary from the --train file only.

    A file's role comes from the option it is given to, not from its "split" field. Settings not
    given here come from params.yaml (data.*, prepare.*); an empty path means "not given".
    """
    params = load_params()
    paths = {
        "train": params.data.train if train is None else train,
        "val": params.data.val if val is None else val,
        "test": params.data.test if test is None else test,
    }
    files = {split: read_visdial(path) for split, path in paths.items() if path}
    if "train" not in files:
        raise typer.BadParameter("a --train file is required")
    dense_path = params.data.dense if dense is None else dense
    summary = prepare(
        files,
        out,
        min_count=params.prepare.min_count if min_count is None else min_count,
        max_len=params.prepare.max_len,
        dense=read_dense(dense_path) if dense_path else None,
        progress=lambda items: track(list(items), description="encoding splits"),
    )
    typer.echo(f"wrote {out}/vocab.json and {out}/dialogs.h5: {summary}")


if __name__ == "__main__":
    run_command(main)

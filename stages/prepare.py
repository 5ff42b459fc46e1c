"""`visdial prepare`: tokenize VisDial JSON, build the vocabulary, write vocab.json + dialogs.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from pipeline.config import is_inside
from pipeline.data.meanings import write_meanings
from pipeline.data.prepare import hold_out, prepare
from pipeline.data.visdial import read_dense, read_visdial
from pipeline.errors import InputError
from stages.common import opt, run_command, user_errors
from stages.params import load_params

FileOpt = Annotated[str | None, opt("VisDial JSON file ('' = none) [default: params.yaml data.*].")]


@user_errors
def main(
    out: Annotated[Path, opt("Output directory, e.g. data/prepared.")],
    train: FileOpt = None,
    val: FileOpt = None,
    val_from_train: Annotated[
        int | None, opt("Without --val: train dialogs held out as val [prepare.val_from_train].")
    ] = None,
    test: FileOpt = None,
    challenge: FileOpt = None,
    dense: Annotated[str | None, opt("v1.0 dense annotations of --test ('' = none).")] = None,
    meanings: Annotated[
        str | None, opt("The demo's answer key, copied to OUT ('' = none) [data.meanings].")
    ] = None,
    min_count: Annotated[
        int | None, opt("Keep train words seen at least N times [prepare.min_count].")
    ] = None,
    allow_overlap: Annotated[
        bool | None, opt("Allow an image id in two roles [prepare.allow_overlap].")
    ] = None,
    inside: Annotated[
        Path | None, opt("Refuse files outside this folder (dvc.yaml: data.dir, the stage's dep).")
    ] = None,
) -> None:
    """Tokenize the dialogs of every role and build the vocabulary from --train only.

    Roles (paper §5): --train is fitted on; --val picks the best epoch (without one, --val-from-
    train N train dialogs are held out, seeded by prepare.seed); --test is the split evaluate
    reports; --challenge is v1.0 test-std (ranks for the evaluation server). A file's role is the
    option it is given to, never its "split" field. No image may be in two roles.
    """
    params = load_params()
    data, cfg = params.data, params.prepare
    paths = {
        role: getattr(data, role) if given is None else given
        for role, given in (("train", train), ("val", val), ("test", test),
                            ("challenge", challenge))
    }  # fmt: skip
    dense_path = data.dense if dense is None else dense
    meanings_path = data.meanings if meanings is None else meanings
    n_val = cfg.val_from_train if val_from_train is None else val_from_train
    given = {"train": train, "val": val, "test": test, "challenge": challenge, "dense": dense,
             "meanings": meanings}  # fmt: skip
    for role, path in [*paths.items(), ("dense", dense_path), ("meanings", meanings_path)]:
        if path and inside and not is_inside(path, inside):
            raise InputError(
                f"data.{role}: {path} is not inside data.dir ({inside}), the folder dvc.yaml"
                " tracks for prepare: move it there or set data.dir"
            )
        if path and given[role] is None and not Path(path).exists():  # params.yaml's file
            how = f"give --{role} F" if role in ("train", "test") else f"give --{role} F or ''"
            need = f"a {role} file is needed; " if role in ("train", "test") else ""
            raise InputError(
                f"no --{role} given, and params.yaml's data.{role} ({path}) does not exist: "
                f"{need}{how}, or set data.{role} in params.yaml"
            )
    for role in ("train", "test"):
        if not paths[role]:
            raise InputError(f"no {role} file: give --{role} F (params.yaml data.{role})")
    files = {role: read_visdial(path) for role, path in paths.items() if path}
    if "val" not in files:
        if n_val == 0:
            raise InputError(
                "no val split: data.val is '' and prepare.val_from_train is 0; give a val file"
                " (--val F) or hold out train dialogs (--val-from-train N; the paper held out 1000)"
            )
        files["train"], files["val"] = hold_out(files["train"], n_val, cfg.seed)
    stats = prepare(
        files,
        out,
        min_count=cfg.min_count if min_count is None else min_count,
        max_len=cfg.max_len,
        dense=read_dense(dense_path) if dense_path else None,
        allow_overlap=cfg.allow_overlap if allow_overlap is None else allow_overlap,
        progress=lambda items: track(list(items), description="encoding splits"),
    )
    if meanings_path:
        write_meanings(out / "meanings.json", Path(meanings_path))
    sizes = ", ".join(f"{role} {n}" for role, n in stats["dialogs"].items())
    same = sum(stats["options_equal_to_answer"].values())
    typer.echo(
        f"wrote {out}: vocabulary {stats['vocab_size']}, dialogs: {sizes}; {same} option(s)"
        " equal to their round's answer as tokens (never D's negatives; see stats.json)"
    )


if __name__ == "__main__":
    run_command(main)

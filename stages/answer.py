"""``visdial answer``: G's answers to every question of a VisDial file (v1.0 test too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.atomic import write_json
from pipeline.chat.answer import answer_file, load_answerer
from pipeline.data.visdial import read_visdial
from pipeline.errors import InputError
from stages.chat import BeamSize, Decode, Model, Temperature, Vocab, settings
from stages.common import run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    dialogs: Annotated[Path, typer.Option(help="A VisDial v0.9/v1.0 dialog JSON file.")],
    images: Annotated[Path, typer.Option(help="Directory of its images.")],
    out: Annotated[Path, typer.Option(help="Output JSON file.")],
    pattern: Annotated[
        str | None, typer.Option(help="printf file name in IMAGES [features.patterns[split]].")
    ] = None,
    model: Model = None,
    decode: Decode = None,
    temperature: Temperature = None,
    beam_size: BeamSize = None,
    vocab: Vocab = None,
    batch_size: Annotated[int | None, typer.Option(help="Dialogs per batch.")] = None,
) -> None:
    """Write [{image_id, round_id (1-based), question, answer}] for every round of DIALOGS.

    The history holds the file's human answers where it has them (G's own where not); every
    round with a question gets G's answer. Defaults come from params.yaml (chat:, features:).
    """
    params = load_params()
    cfg = settings(params.chat, model=model, decode=decode, temperature=temperature,
                   beam_size=beam_size, vocab=vocab, batch_size=batch_size)  # fmt: skip
    file = read_visdial(dialogs)
    pattern = pattern or params.features.patterns.get(file.split)
    if not pattern:
        raise InputError(f"{dialogs}: split {file.split!r} has no features.patterns entry: "
                         "give --pattern")  # fmt: skip
    answerer = load_answerer(cfg, params.features, params.model, params.prepare.max_len)
    results = answer_file(answerer, file, images, pattern, cfg.batch_size)
    write_json(out, results)
    typer.echo(
        f"answer: {len(results)} rounds of {len(file)} dialogs ({answerer.decoding}) -> {out}"
    )


if __name__ == "__main__":
    run_command(main)

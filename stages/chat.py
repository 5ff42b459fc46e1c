"""``visdial chat``: talk to a trained G about any image, on the terminal (reads stdin)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.chat.answer import Chat, load_answerer
from pipeline.config import ChatConfig, ServeConfig
from pipeline.data.visdial import ROUNDS
from pipeline.errors import InputError
from stages.common import run_command, user_errors
from stages.params import PARAMS_FILE, load_params, with_options

Model = Annotated[str | None, typer.Option(help="g-dis | g-mle | a G variant | PATH.pt.")]
Decode = Annotated[str | None, typer.Option(help="greedy | sample | beam.")]
Temperature = Annotated[float | None, typer.Option(help="Softmax temperature (sample).")]
BeamSize = Annotated[int | None, typer.Option(help="Beams (beam).")]
Vocab = Annotated[str | None, typer.Option(help="vocab.json of the model's data.")]
EMPTY_HINT = "(type a question, or 'exit' to end)"


def settings(chat: ChatConfig, **given) -> ChatConfig:
    """params.yaml ``chat:`` with the options given on the command line on top."""
    return with_options(chat, "chat", **given)


def check_workspace(chat: ChatConfig | ServeConfig, command: str = "visdial chat") -> None:
    """Refuse, in one line, to start without the vocabulary (``chat.vocab`` / ``serve.vocab``):
    outside the project root (no params.yaml here, so the relative default paths point nowhere)
    or before ``dvc repro``."""
    vocab = Path(chat.vocab)
    if vocab.is_file():
        return
    if PARAMS_FILE.is_file():
        raise InputError(f"{vocab} not found: run `dvc repro` first (or give --vocab)")
    raise InputError(
        f"{vocab} not found: run {command} from the project root (where {PARAMS_FILE} is),"
        " after `dvc repro`"
    )


@user_errors
def main(
    image: Annotated[Path, typer.Option(help="Any JPEG/PNG image.")],
    caption: Annotated[str, typer.Option(help="Its caption (the history's round 0).")] = "",
    model: Model = None,
    decode: Decode = None,
    temperature: Temperature = None,
    beam_size: BeamSize = None,
    vocab: Vocab = None,
) -> None:
    """Ask G questions about IMAGE; it answers round by round with the dialog as history.

    Defaults come from params.yaml (chat:, features:, model:, prepare.max_len). Dialogs keep
    the caption and the last 9 exchanges (VisDial has 10 rounds). 'exit' or Ctrl-D ends.
    """
    params = load_params()
    cfg = settings(params.chat, model=model, decode=decode, temperature=temperature,
                   beam_size=beam_size, vocab=vocab)  # fmt: skip
    check_workspace(cfg)
    answerer = load_answerer(cfg, params.features, params.model, params.prepare.max_len)
    chat = Chat(answerer, image, caption)
    typer.echo(f"G: {answerer.path} ({answerer.name}), {answerer.decoding}")
    if not caption.strip():
        typer.echo("note: no --caption: round 0 of the history is empty (VisDial always has one)")
    if chat.caption_unknown:
        typer.echo(f"note: caption words read as <unk>: {', '.join(chat.caption_unknown)}")
    typer.echo("Ask about the image ('exit' or Ctrl-D ends).")
    n = 1
    while (question := _read(f"Q{n}: ")) is not None:
        if not question:
            typer.echo(EMPTY_HINT)
            continue
        reply = chat.ask(question)
        if reply.unknown:
            typer.echo(f"note: words read as <unk>: {', '.join(reply.unknown)}")
        if reply.dropped and n == ROUNDS + 1:
            typer.echo(f"note: history now keeps the caption and the last {ROUNDS - 1} exchanges")
        typer.echo(f"A{n}: {reply.answer}")
        n += 1


def _read(prompt: str) -> str | None:
    """The next question; None at Ctrl-D / Ctrl-C / 'exit'. Piped input is echoed."""
    try:
        line = input(prompt).strip()
    except (EOFError, KeyboardInterrupt):
        typer.echo("")
        return None
    if not sys.stdin.isatty():
        typer.echo(line)  # a piped dialog reads like a transcript
    return None if line.lower() in ("exit", "quit") else line


if __name__ == "__main__":
    run_command(main)

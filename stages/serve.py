"""``visdial serve``: the web demo — G-MLE and G-DIS answer side by side (docs/serve.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import Params
from pipeline.data.visdial import read_visdial
from pipeline.serve.answering import load_served
from pipeline.serve.app import Example, create_app
from stages.chat import check_workspace
from stages.common import run_command, user_errors
from stages.params import load_params, with_options


def examples(params: Params) -> list[Example]:
    """The first ``serve.examples`` dialogs of ``data.test`` whose image file exists."""
    if not params.serve.examples or not params.data.test or not Path(params.data.test).is_file():
        return []
    file = read_visdial(params.data.test)
    pattern = params.features.patterns.get("test", "")
    out = []
    for image_id, caption in zip(file.image_id.tolist(), file.caption, strict=True):
        path = Path(params.data.images) / (pattern % image_id)
        if path.is_file():
            out.append(Example(image_id, caption, path))
        if len(out) == params.serve.examples:
            break
    return out


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@user_errors
def main(
    host: Annotated[str | None, typer.Option(help="Address to bind (default serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port; 0 = any).")] = None,
) -> None:
    """Serve the web demo on http://HOST:PORT: pick or upload an image, ask questions; G-MLE's
    and G-DIS's answers appear side by side with D's scores and HCIAE's attention.

    JSON API: POST /api/answer, GET /api/health (docs/serve.md). Settings: params.yaml serve:
    (models, limits, cache), features:, model:, prepare.max_len. Run from the project root
    after `dvc repro`. Binds 127.0.0.1 by default: anything else exposes the models.
    """
    import uvicorn

    params = load_params()
    cfg = with_options(params.serve, "serve", host=host, port=port)
    check_workspace(cfg, "visdial serve")
    served = load_served(cfg, params.features, params.model, params.prepare.max_len)
    app = create_app(served, examples(params))
    if not _loopback(cfg.host):
        typer.echo(f"warning: --host {cfg.host} exposes the demo to every machine that reaches it")
    typer.echo(f"models: {served.names} on {served.device}; http://{cfg.host}:{cfg.port}/")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


if __name__ == "__main__":
    run_command(main)

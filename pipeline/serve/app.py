"""The HTTP side of ``visdial serve`` (FastAPI): the page, its JSON API, one-line errors.

* ``GET /`` the page (``page.html``; no external script: it works offline).
* ``GET /api/health`` ``{"status": "ok", "models": {...}, "device": ..., "cache": {...}}``.
* ``GET /api/examples`` test images to pick from; ``GET /api/examples/{i}/image`` one of them.
* ``POST /api/answer`` multipart ``image`` (file), ``caption``, ``history`` (JSON
  ``[[q, a], ...]``), ``question`` -> ``{"answers", "scores", "attention", ...}``.

Bad requests get a 4xx with ``{"error": "<one line>"}`` and the server keeps serving. The
handlers are plain functions: FastAPI runs them in its thread pool, so requests run
concurrently; they share only the read-only models and the (locked) feature cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from pipeline.errors import InputError
from pipeline.serve.answering import BadRequest, Served

PAGE = Path(__file__).with_name("page.html")


@dataclass(frozen=True)
class Example:
    image_id: int
    caption: str
    path: Path


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "error"}, status)


TOO_LARGE = "image: the request is over serve.max_upload_mb"


class BodyLimit:
    """ASGI middleware: 413 for a request to ``path`` whose body is over ``limit`` bytes.

    A declared Content-Length over the limit is refused before any of the body is read; a body
    without one (chunked) is counted as it arrives and refused once it passes the limit, so
    no upload is ever spooled whole before the check.
    """

    def __init__(self, app, path: str, limit: int):
        self.app, self.path, self.limit = app, path, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _error(413, TOO_LARGE)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # raised inside the body parser: FastAPI passes it on
                raise FastAPIHTTPException(413, TOO_LARGE)
            return message

        return await self.app(scope, counted, send)


def create_app(served: Served, examples: list[Example]) -> FastAPI:
    """The app around loaded models ``served``; ``examples`` are offered on the page."""
    app = FastAPI(title="visdial serve", summary="G-MLE and G-DIS side by side")
    max_bytes = int(served.cfg.max_upload_mb * 2**20)

    app.add_middleware(BodyLimit, path="/api/answer", limit=max_bytes + 2**16)  # + text fields

    @app.exception_handler(RequestValidationError)
    def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(BadRequest)
    def bad_request(_: Request, err: BadRequest) -> JSONResponse:
        return _error(err.status, str(err))

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/api/health")
    def health() -> dict:
        cache = served.cache
        return {
            "status": "ok",
            "models": served.names,
            "device": str(served.device),
            "cache": {"images": len(cache), "hits": cache.hits, "misses": cache.misses},
            "limits": {"max_upload_mb": served.cfg.max_upload_mb,
                       "max_question_words": served.cfg.max_question_words},
        }  # fmt: skip

    @app.get("/api/examples")
    def list_examples() -> list[dict]:
        return [
            {"index": i, "image_id": x.image_id, "caption": x.caption,
             "url": f"/api/examples/{i}/image"}
            for i, x in enumerate(examples)
        ]  # fmt: skip

    @app.get("/api/examples/{index}/image")
    def example_image(index: int) -> FileResponse:
        if not 0 <= index < len(examples):
            raise BadRequest(f"example {index}: there are {len(examples)}", 404)
        return FileResponse(examples[index].path)

    @app.post("/api/answer")
    def answer(
        image: UploadFile = File(...),  # noqa: B008 (FastAPI's declared parameters)
        question: str = Form(...),  # noqa: B008
        caption: str = Form(""),  # noqa: B008
        history: str = Form("[]"),  # noqa: B008
    ) -> dict:
        start = time.perf_counter()
        data = image.file.read(max_bytes + 1)
        try:
            past = json.loads(history)
        except json.JSONDecodeError as err:
            raise BadRequest(f"history: not JSON ({err.msg} at char {err.pos})") from None
        try:
            body = served.answer(data, caption, past, question)
        except BadRequest:
            raise
        except InputError as err:
            raise BadRequest(str(err), 400) from None
        body["elapsed_ms"] = round(1000 * (time.perf_counter() - start), 1)
        return body

    return app

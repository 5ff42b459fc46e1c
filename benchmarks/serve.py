"""``POST /api/answer`` latency of ``visdial serve``: median and p95 per request, new and cached
images, against the same work called directly (``Served.answer``: what the HTTP layer adds).

Run from the project root after ``bash scripts/demo`` (it loads the models of ``params.yaml``
``serve:``). Requests go through FastAPI's TestClient (the whole HTTP stack, no network).
A "new" image is a test image with one pixel changed, so that it misses the feature cache and
costs a VGG-19 forward, as a visitor's upload does.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
from PIL import Image

from pipeline.serve.answering import load_served
from pipeline.serve.app import create_app
from stages.params import load_params
from stages.serve import examples

QUESTIONS = ["what color is the circle?", "is there a triangle?", "how many shapes are there?"]


def variant(png: bytes, i: int) -> bytes:
    """The image with pixel (0, 0) set from ``i``: same picture, another hash."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).copy()
    img[0, 0] = (i % 256, (i // 256) % 256, 7)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def stats(times: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    ms = sorted(1000 * t for t in times)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def main(argv: list[str] | None = None) -> dict:
    from fastapi.testclient import TestClient

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=30, help="per kind (new / cached image)")
    args = ap.parse_args(argv)
    params = load_params()
    served = load_served(params.serve, params.features, params.model, params.prepare.max_len)
    shown = examples(params)
    if not shown:
        raise SystemExit("no test image found (data.test, data.images): run bash scripts/demo")
    app = create_app(served, shown)
    client = TestClient(app)
    base = shown[0].path.read_bytes()
    caption = shown[0].caption

    def post(image: bytes, question: str, history: list) -> float:
        start = time.perf_counter()
        response = client.post(
            "/api/answer", files={"image": ("x.png", image, "image/png")},
            data={"question": question, "caption": caption, "history": json.dumps(history)},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return time.perf_counter() - start

    post(base, QUESTIONS[0], [])  # warm up (first-call allocations)
    history = [["is it big?", "yes"], ["is it on the left?", "no"]]
    new = [post(variant(base, i), QUESTIONS[i % 3], history) for i in range(args.requests)]
    cached = [post(base, QUESTIONS[i % 3], history) for i in range(args.requests)]
    direct = []
    for i in range(args.requests):
        start = time.perf_counter()
        served.answer(base, caption, history, QUESTIONS[i % 3])
        direct.append(time.perf_counter() - start)
    out = {"new image": stats(new), "cached image": stats(cached), "direct (cached)": stats(direct)}
    for name, (median, p95) in out.items():
        print(f"{name:>16}: median {median:7.1f} ms  p95 {p95:7.1f} ms")
    ratio = out["cached image"][0] / out["direct (cached)"][0]
    print(f"HTTP layer: cached-image request / direct call = {ratio:.2f}x (median)")
    vgg = out["new image"][0] / out["cached image"][0]
    print(f"VGG-19 forward included: new / cached image = {vgg:.1f}x (median)")
    return out


if __name__ == "__main__":
    main()

"""``visdial serve``'s JSON API (pipeline/serve): answers as ``visdial chat`` gives them, D's
scores, attention, one-line 4xx errors that leave the server serving, no state between requests."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pipeline.chat.answer import Chat, load_answerer
from pipeline.config import ModelConfig
from pipeline.serve.answering import load_served
from pipeline.serve.app import Example, create_app
from stages.params import load_params
from tests.chat.test_chat import PARAMS, make_workspace, save_checkpoint
from tests.conftest import visdial_doc

pytest.importorskip("httpx2", reason="FastAPI's TestClient needs httpx: bash scripts/setup dev")
from fastapi.testclient import TestClient  # noqa: E402


def serve_workspace(root: Path, examples: bool = False) -> Path:
    """``visdial chat``'s test workspace plus D; ``examples``: a test file with one dialog whose
    image is img.png (as ``data.test``/``data.images``), for the page's examples."""
    make_workspace(root)  # params.yaml, vocab, models/hciae-g-{dis,mle}, img.png, grey.jpg
    path = root / "models/hciae-g-dis/best.pt"  # make_workspace's two Gs are the same: perturb
    state = torch.load(path, weights_only=True)
    noise = torch.Generator().manual_seed(1)
    state["model"] = {
        k: v + 0.5 * torch.randn(v.shape, generator=noise) if v.is_floating_point() else v
        for k, v in state["model"].items()
    }
    torch.save(state, path)
    vocab_size = len(json.loads((root / "data/prepared/vocab.json").read_text())["itos"])
    save_checkpoint(root / "models/hciae-d-np-att/best.pt", "hciae-d-np-att", vocab_size,
                    ModelConfig(**PARAMS["model"]))  # fmt: skip
    if examples:
        doc = visdial_doc([("a red ball", [("is it red", "yes")])], split="val", first_id=100)
        (root / "test.json").write_text(json.dumps(doc))
        shutil.copy(root / "img.png", root / "demo_000000000100.png")
        params = {
            **PARAMS,
            "data": {"test": "test.json", "images": "."},
            "features": {**PARAMS["features"], "patterns": {"test": "demo_%012d.png"}},
        }
        (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return serve_workspace(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def params(ws):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ws)
        params = load_params()
    serve = dataclasses.replace(
        params.serve, vocab=str(ws / "data/prepared/vocab.json"), device="cpu",
        g_mle=str(ws / "models/hciae-g-mle/best.pt"), g_dis=str(ws / "models/hciae-g-dis/best.pt"),
        discriminator=str(ws / "models/hciae-d-np-att/best.pt"),
    )  # fmt: skip
    return dataclasses.replace(params, serve=serve)


def make_client(params, **serve) -> TestClient:
    cfg = dataclasses.replace(params.serve, **serve)
    served = load_served(cfg, params.features, params.model, params.prepare.max_len)
    ws = Path(cfg.vocab).parents[2]
    return TestClient(create_app(served, [Example(7, "a red ball", ws / "img.png")]))


@pytest.fixture(scope="module")
def client(params):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead on a busy 2-core box
    yield make_client(params)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def image(ws) -> bytes:
    return (ws / "img.png").read_bytes()


def ask(client, image: bytes, question: str, history=(), caption: str = "a red ball"):
    return client.post(
        "/api/answer",
        files={"image": ("img.png", image, "image/png")},
        data={"question": question, "caption": caption, "history": json.dumps(list(history))},
    )


def test_health_names_the_models(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["device"] == "cpu"
    assert set(body["models"]) == {"g-mle", "g-dis", "d"}


def test_page_and_examples_are_served(client, image):
    page = client.get("/").text
    for element in ('id="upload"', 'id="question"', 'id="heat-g-mle"', 'id="heat-g-dis"'):
        assert element in page
    assert "<script src" not in page  # nothing loaded from elsewhere: works offline
    examples = client.get("/api/examples").json()
    assert examples == [{"index": 0, "image_id": 7, "caption": "a red ball",
                         "url": "/api/examples/0/image"}]  # fmt: skip
    assert client.get(examples[0]["url"]).content == image
    assert client.get("/api/examples/3/image").status_code == 404


def test_answers_are_those_of_visdial_chat_round_by_round(client, image, ws, monkeypatch):
    """Each G sees its own past answers, in the history window ``visdial chat`` keeps."""
    monkeypatch.chdir(ws)
    params = load_params()
    chats = {}
    for role in ("g-mle", "g-dis"):
        cfg = dataclasses.replace(params.chat, model=role, device="cpu")
        answerer = load_answerer(cfg, params.features, params.model, params.prepare.max_len)
        chats[role] = Chat(answerer, ws / "img.png", "a red ball")
    history = []
    for question in ["is it red", "what color is the ball?", "is there a dog"] + ["is it"] * 9:
        body = ask(client, image, question, history).json()
        assert body["answers"] == {role: c.ask(question).answer for role, c in chats.items()}
        history.append([question, body["answers"]])
    assert any(a["g-mle"] != a["g-dis"] for _, a in history)  # the two histories differ
    for role in ("g-mle", "g-dis"):
        att = body["attention"][role]
        assert len(att["history"]) == len(att["facts"]) == 10  # caption + the last 9 exchanges
        kept = history[-10:-1]  # the exchanges before the last question, 9 of them
        assert att["facts"][1:] == [f"{q} {a[role]}" for q, a in kept]  # each G's own answers


def test_attention_and_scores_are_the_models_own(client, image, ws, params):
    body = ask(client, image, "what color is it", [["is it red", "yes"]]).json()
    grid = (params.features.image_size // 32) ** 2  # pool5: 7x7 at 224, 2x2 here
    for role in ("g-mle", "g-dis"):
        att = body["attention"][role]
        assert len(att["image"]) == grid and sum(att["image"]) == pytest.approx(1, abs=1e-3)
        assert len(att["history"]) == 2 and sum(att["history"]) == pytest.approx(1, abs=1e-3)
        assert att["facts"] == ["a red ball", "is it red yes"]
        assert isinstance(body["scores"][role], float)
    assert body["unknown_words"] == []


def test_d_scores_what_d_computes(params, image):
    """The score of an answer is e_D^T f(answer) for the same dialog (a direct computation)."""
    from pipeline.chat.dialog import LiveDialog, encode_text
    from pipeline.data.tokenize import tokenize

    served = load_served(params.serve, params.features, params.model, params.prepare.max_len)
    body = served.answer(image, "a red ball", [], "is it red")
    regions = served.regions(image)
    caption, _ = encode_text("a red ball", served.vocab, 24)
    q, _ = encode_text("is it red", served.vocab, 16, question=True)
    batch = LiveDialog(regions, caption, served.max_len).batch(q)
    for role in ("g-mle", "g-dis"):
        ids = served.vocab.encode(tokenize(body["answers"][role]))
        with torch.no_grad():
            e = served.d.encode(batch)[-1]  # (D,)
            toks = ids or [0]  # an empty answer is scored as one <pad>, as the app does
            f = served.d.answer_encoder(torch.tensor([toks]), torch.tensor([len(toks)]))[0]
        assert body["scores"][role] == pytest.approx(float(e @ f), abs=1e-4)


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


BAD = [
    ("not an image", dict(image=b"hello, not an image"), 400, "image: not an image format"),
    ("corrupt PNG", dict(image="truncated"), 400, "image: not a readable image"),
    ("empty upload", dict(image=b""), 400, "image: the upload is empty"),
    ("blank question", dict(question="   "), 422, "question: empty"),
    ("empty question", dict(question=""), 422, "question: Field required"),  # FastAPI: "" = absent
    ("no question", dict(question=None), 422, "question: Field required"),
    ("200-word question", dict(question="is it " * 100), 422, "question: 200 words"),
    ("history not JSON", dict(history="[[1, 2]"), 422, "history: not JSON"),
    ("history not pairs", dict(history='[["q"]]'), 422, "history[0]: expected [question, answer]"),
    ("history answer", dict(history='[["q", 3]]'), 422, "history[0]: the answer of g-mle"),
    ("history not a list", dict(history='{"q": "a"}'), 422, "history: expected a JSON list"),
    ("no image", dict(image=None), 422, "image: Field required"),
]


@pytest.mark.parametrize("name, change, status, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_request_gets_a_one_line_4xx_and_the_server_keeps_serving(
    client, image, name, change, status, message
):
    request = {"image": image, "question": "is it red", "history": "[]"}
    request.update(change)
    if request["image"] == "truncated":
        request["image"] = image[: len(image) // 2]
    files = {} if request["image"] is None else {"image": ("x.png", request["image"], "image/png")}
    data = {k: request[k] for k in ("question", "history") if request[k] is not None}
    response = client.post("/api/answer", files=files, data=data)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error
    assert ask(client, image, "is it red").status_code == 200


def post_chunked(client, image: bytes, question: str):
    """POST /api/answer as a multipart body sent in chunks, without Content-Length."""
    boundary = "visdial-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="question"\r\n\r\n{question}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="i.png"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + image + f"\r\n--{boundary}--\r\n".encode()
    chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return client.post("/api/answer", content=chunks, headers=headers)


def test_large_uploads_and_decompression_bombs_get_413(params, image, monkeypatch):
    small = make_client(params, max_upload_mb=len(image) / 2**20 / 2)
    response = ask(small, image, "is it red")
    assert response.status_code == 413 and "serve.max_upload_mb" in response.json()["error"]
    big = make_client(params, max_upload_mb=0.01)  # refused on Content-Length, before reading
    response = ask(big, b"x" * 200_000, "is it red")
    assert response.status_code == 413 and response.json()["error"].startswith("image: the req")
    # Without Content-Length (a chunked upload) the body is counted as it arrives.
    response = post_chunked(big, b"x" * 200_000, "is it red")
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and response.json()["error"].startswith("image: the req")
    assert post_chunked(make_client(params), image, "is it red").status_code == 200
    client = make_client(params)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.warns(Image.DecompressionBombWarning):  # PIL warns, then the server refuses
        response = ask(client, _png((40, 40)), "is it red")  # 1600 pixels
    assert response.status_code == 413 and "decompression-bomb" in response.json()["error"]
    assert ask(client, _png((30, 30)), "is it red").status_code == 200


def test_concurrent_requests_share_nothing_but_the_models(client, image, ws):
    """Different dialogs at once give what each gives alone; the features are cached once."""
    grey = (ws / "grey.jpg").read_bytes()
    jobs = [(img, q, h) for img in (image, grey) for q, h in
            [("is it red", []), ("what color", [["is it red", "yes"]]),
             ("is it a dog", [["is it red", "no"], ["what color", "blue"]])]]  # fmt: skip
    alone = [ask(client, *job).json()["answers"] for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: ask(client, *job).json()["answers"], jobs * 2))
    assert together == alone * 2
    health = client.get("/api/health").json()
    assert health["cache"]["hits"] >= len(jobs) * 2


def test_serve_outside_the_project_root_says_where_to_run_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from stages.cli import app

    monkeypatch.chdir(tmp_path)  # no params.yaml, no data/prepared/vocab.json
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "run visdial serve from the project root" in result.output

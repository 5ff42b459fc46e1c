"""``visdial chat`` and the live-dialog batches behind it (pipeline/dialog.py, answer.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from pipeline.chat.answer import (
    Chat,
    detokenize,
    is_generator,
    load_answerer,
    model_path,
    trained_generators,
)
from pipeline.chat.dialog import LiveDialog, encode_text, file_arrays, file_batch
from pipeline.config import ModelConfig
from pipeline.data.visdial import read_visdial
from pipeline.data.vocab import SPECIALS, UNK_ID, Vocabulary
from pipeline.errors import InputError
from pipeline.models.variants import build_model, model_meta
from stages.cli import app
from stages.params import load_params
from tests.conftest import visdial_doc

runner = CliRunner()
WORDS = ["?", "is", "it", "a", "the", "red", "blue", "ball", "dog", "what", "color", "yes", "no",
         ",", ".", "there", "one", "two"]  # fmt: skip
PARAMS = {
    "features": {"image_size": 64, "weights": "random", "seed": 0, "device": "cpu"},
    "model": {"embed_dim": 8, "hidden": 16, "dropout": 0.0},
    "chat": {"device": "cpu"},
}


def save_checkpoint(path: Path, arch: str, vocab_size: int, cfg: ModelConfig, variant=None):
    """A checkpoint in the format ``pipeline.train`` publishes, with seeded random weights."""
    torch.manual_seed(0)
    model = build_model(arch, vocab_size, cfg)
    meta = {**model_meta(model, vocab_size), "variant": variant or arch}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "meta": meta, "epoch": 0, "history": [],
                "best": None}, path)  # fmt: skip


def make_workspace(root: Path) -> None:
    """params.yaml, data/prepared/vocab.json, models/hciae-g-{dis,mle}/best.pt, two images."""
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    vocab = Vocabulary([*SPECIALS, *WORDS])
    vocab.save(root / "data/prepared/vocab.json")
    cfg = ModelConfig(**PARAMS["model"])
    for name in ("g-dis", "g-mle"):
        save_checkpoint(root / f"models/hciae-{name}/best.pt", "hciae-g-mle", len(vocab), cfg,
                        f"hciae-{name}")  # fmt: skip
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 80, 3), np.uint8)).save(root / "img.png")
    Image.fromarray(rng.integers(0, 255, (40, 40), np.uint8)).save(root / "grey.jpg")


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: 2 threads on a busy 2-core box are ~100x slower
    yield tmp_path
    torch.set_num_threads(threads)


def chat(*args: str, input: str = ""):
    return runner.invoke(app, ["chat", "--image", "img.png", *args], input=input)


def answers(output: str) -> list[str]:
    return re.findall(r"^A\d+: (.*)$", output, flags=re.M)


def answerer(**chat):
    params = load_params()
    cfg = dataclasses.replace(params.chat, **chat)
    return load_answerer(cfg, params.features, params.model, params.prepare.max_len)


# --------------------------------------------------------------------------- the CLI


def test_chat_loop_answers_as_the_library_does_and_exit_ends(ws):
    result = chat("--caption", "a red ball", input="is it red\nwhat color is it?\nexit\nyes\n")
    assert result.exit_code == 0, result.output
    got = answers(result.output)
    assert len(got) == 2 and "Q3: exit" in result.output  # nothing after 'exit' is asked
    session = Chat(answerer(), ws / "img.png", "a red ball")
    assert got == [session.ask("is it red").answer, session.ask("what color is it?").answer]
    assert "hciae-g-dis" in result.output and "greedy" in result.output


def test_ctrl_d_ends_and_blank_lines_are_skipped_with_a_hint(ws):
    result = chat(input="is it red\n\n   \nis it blue")  # no trailing newline, then EOF
    assert result.exit_code == 0, result.output
    assert len(answers(result.output)) == 2 and "Q3:" in result.output
    assert result.output.count("\n(type a question, or 'exit' to end)\n") == 2  # one per blank


def test_unknown_words_are_listed_and_read_as_unk(ws):
    result = chat("--caption", "a zebra", input="is the zebra purple or zebra\n")
    assert result.exit_code == 0, result.output
    assert "note: caption words read as <unk>: zebra" in result.output
    assert "note: words read as <unk>: zebra, purple, or" in result.output
    vocab = Vocabulary.load(ws / "data/prepared/vocab.json")
    ids, unknown = encode_text("Is the ZEBRA red", vocab, 16, question=True)
    assert ids == [vocab.stoi["is"], vocab.stoi["the"], UNK_ID, vocab.stoi["red"], vocab.stoi["?"]]
    assert unknown == ["zebra"]


def test_greedy_is_deterministic_and_sampling_is_seeded(ws):
    questions = "is it red\nis it a dog\nwhat color\n"
    runs = [answers(chat(*opts, input=questions).output) for opts in
            [(), (), ("--decode", "sample", "--temperature", "3"),
             ("--decode", "sample", "--temperature", "3"), ("--decode", "beam")]]  # fmt: skip
    assert runs[0] == runs[1] and runs[2] == runs[3]
    assert all(len(r) == 3 for r in runs)
    assert runs[2] != runs[0]  # temperature 3 on a random G: almost surely other words


def test_grey_jpeg_works(ws):
    result = runner.invoke(app, ["chat", "--image", "grey.jpg", "--model", "g-mle"], input="x\n")
    assert result.exit_code == 0, result.output
    assert "hciae-g-mle" in result.output and len(answers(result.output)) == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ("vocab", "vocab_size is 22 there, 23 here (compared with data/prepared/vocab.json"),
        ("params", "hidden is 16 there, 32 here"),
        ("d", "hciae-d-np-att is a discriminative model (D)"),
        ("missing", "model 'nope' not found (no models/nope/best.pt): the trained G models are"),
        ("missing-file", "models/nope/last.pt: checkpoint not found"),  # a path stays a path
        ("image", "img.png: cannot read image"),
        ("decode", "key 'chat.decode' has value 'top-k', expected one of greedy, sample, beam"),
    ],
)
def test_refusals_are_one_line_exit_1(ws, change, message):
    args = []
    if change == "vocab":
        Vocabulary([*SPECIALS, *WORDS, "extra"]).save(ws / "data/prepared/vocab.json")
    elif change == "params":
        (ws / "params.yaml").write_text(
            yaml.safe_dump({**PARAMS, "model": {**PARAMS["model"], "hidden": 32}})
        )
    elif change == "d":
        save_checkpoint(ws / "d.pt", "hciae-d-np-att", 22, ModelConfig(**PARAMS["model"]))
        args = ["--model", "d.pt"]
    elif change == "missing":
        args = ["--model", "nope"]
    elif change == "missing-file":
        args = ["--model", "models/nope/last.pt"]
    elif change == "image":
        (ws / "img.png").write_bytes(b"not a png")
    else:
        args = ["--decode", "top-k"]
    result = chat(*args, input="is it red\n")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "A1:" not in result.output


def test_unknown_model_lists_the_trained_generators(ws):
    for name in ("hciae-d-np-att", "lf-g-gan1", "hciae-d-gan1"):  # only G names are offered
        (ws / f"models/{name}").mkdir()
        (ws / f"models/{name}/best.pt").write_bytes(b"")
    (ws / "models/hre-g").mkdir()  # no best.pt: not trained
    assert trained_generators() == ["g-dis", "g-mle", "hciae-g-dis", "hciae-g-mle", "lf-g-gan1"]
    result = chat("--model", "hciae-g", input="is it red\n")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == (
        "error: model 'hciae-g' not found (no models/hciae-g/best.pt): the trained G models are"
        " g-dis, g-mle, hciae-g-dis, hciae-g-mle, lf-g-gan1 (or give a checkpoint PATH.pt)\n"
    )


def test_no_trained_model_says_to_run_dvc_repro(ws):
    for name in ("hciae-g-dis", "hciae-g-mle"):
        (ws / f"models/{name}/best.pt").unlink()
    result = chat(input="is it red\n")  # the default model, g-dis
    assert result.exit_code == 1 and "A1:" not in result.output
    assert result.stderr == (
        "error: model 'g-dis' not found (no models/hciae-g-dis/best.pt): no G is trained yet"
        " under models/, run `dvc repro` first\n"
    )


def test_outside_the_project_root_says_where_to_run(ws, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "img.png").write_bytes((ws / "img.png").read_bytes())
    monkeypatch.chdir(elsewhere)  # no params.yaml, no data/ here
    result = chat(input="is it red\n")
    assert result.exit_code == 1 and "A1:" not in result.output
    assert result.stderr == (
        "error: data/prepared/vocab.json not found: run visdial chat from the project root"
        " (where params.yaml is), after `dvc repro`\n"
    )
    monkeypatch.chdir(ws)
    (ws / "data/prepared/vocab.json").unlink()  # the root, before `dvc repro`
    result = chat(input="is it red\n")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: data/prepared/vocab.json not found: run `dvc repro` first (or give --vocab)\n"
    )


@pytest.mark.parametrize(
    "name, generator",
    [("lf-g", True), ("hciae-g-mle", True), ("hciae-g-dis", True), ("mn-g-gan2", True),
     ("hciae-d-np-att", False), ("hciae-d-gan1", False), ("hciae-g-np", False), ("nope", False)],
)  # fmt: skip
def test_generator_names(name, generator):
    assert is_generator(name) is generator


def test_model_names_resolve_to_published_checkpoints():
    assert model_path("g-dis") == Path("models/hciae-g-dis/best.pt")
    assert model_path("g-mle") == Path("models/hciae-g-mle/best.pt")
    assert model_path("lf-g") == Path("models/lf-g/best.pt")
    assert model_path("x/last.pt") == Path("x/last.pt")
    assert detokenize(["yes", ",", "it", "is", "."]) == "yes, it is."


# --------------------------------------------------------------------------- the history


def test_live_dialog_history_equals_the_training_batch(ws):
    """Chat round t is encoded exactly as round t of the same dialog prepared for training."""
    doc = visdial_doc([("a red ball", [("is it red", "yes"), ("what color", "red , blue"),
                                        ("is there a dog", "no .")])])  # fmt: skip
    (ws / "d.json").write_text(json.dumps(doc))
    a = answerer()
    arrays = file_arrays(read_visdial(ws / "d.json"), a.vocab, a.max_len)
    image = torch.randn(1, 4, 512)  # (B, K, 512)
    full = a.model.encode(file_batch(arrays, np.array([0]), image))  # (R, D)
    live = LiveDialog(image[0], arrays["caption"][0, : arrays["caption_len"][0]].tolist(),
                      a.max_len)  # fmt: skip
    for t, (q, ans) in enumerate(doc_rounds(arrays)):
        batch = live.batch(q)
        assert batch.question.shape[1] == t + 1
        e = a.model.encode(batch)[-1]
        torch.testing.assert_close(e, full[t], rtol=1e-5, atol=1e-6)
        live.add(q, ans)


def doc_rounds(arrays):
    for r in range(int(arrays["num_rounds"][0])):
        q = arrays["question"][0, r, : arrays["question_len"][0, r]].tolist()
        yield q, arrays["answer"][0, r, : arrays["answer_len"][0, r]].tolist()


def test_sliding_window_keeps_caption_and_last_nine_exchanges(ws):
    a = answerer()
    live = LiveDialog(torch.zeros(4, 512), [5, 6], a.max_len)
    for i in range(12):
        live.add([4 + i % 5, 4], [7 + i % 3])
    batch = live.batch([8, 4])
    assert batch.question.shape[:2] == (1, 10) and batch.caption[0, :2].tolist() == [5, 6]
    kept = [(4 + i % 5, 7 + i % 3) for i in range(3, 12)]  # exchanges 4..12 of 12
    got = [
        (int(q[0]), int(x[0]))
        for q, x in zip(batch.question[0, :9], batch.answer[0, :9], strict=True)
    ]
    assert got == kept and batch.answer_len[0, 9] == 0 and live.sliding
    result = chat(input="".join(f"is it {c}\n" for c in ["red", "blue"] * 6))
    assert result.output.count("note: history now keeps the caption and the last 9") == 1
    assert len(answers(result.output)) == 12


def test_region_count_follows_image_size(ws):
    """features.image_size 64 -> 2x2 = 4 regions; the encoders take any count."""
    session = Chat(answerer(), ws / "img.png")
    assert session.dialog.image.shape == (4, 512)
    assert session.dialog.image.dtype == torch.float32
    assert torch.equal(session.dialog.image, session.dialog.image.half().float())  # stored dtype


def test_bad_settings_are_input_errors(ws):
    with pytest.raises(InputError, match="chat.temperature"):
        answerer(decode="sample", temperature=0.0)
    with pytest.raises(InputError, match="vocabulary file not found"):
        answerer(vocab="nope.json")

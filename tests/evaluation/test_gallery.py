"""``report/gallery.html`` (pipeline/evaluation/gallery.py, gallery_page.py): what each round
shows is the models' own output, the page is self-contained and escapes what it shows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.config import ModelConfig, ReportConfig
from pipeline.data.loaders import load_data
from pipeline.data.vocab import Vocabulary
from pipeline.evaluation.gallery import build_gallery, dialog_entry
from pipeline.evaluation.gallery_page import RAMP, heat_rgb, image_grid, render_gallery
from pipeline.models.checkpoint import load_model
from tests.chat.test_chat import save_checkpoint

CFG = ModelConfig(embed_dim=8, hidden=16, dropout=0.0)


@pytest.fixture(scope="module")
def models(tiny_data, tmp_path_factory) -> Path:
    prepared, _ = tiny_data
    root = tmp_path_factory.mktemp("gallery-models")
    n = len(Vocabulary.load(prepared / "vocab.json"))
    for name, arch in [("hciae-g-mle", "hciae-g-mle"), ("hciae-g-dis", "hciae-g-mle"),
                       ("hciae-d-np-att", "hciae-d-np-att")]:  # fmt: skip
        save_checkpoint(root / name / "best.pt", arch, n, CFG, name)
    return root


def test_heat_ramp_ends_and_grid_cells():
    assert heat_rgb(0) == RAMP[0] and heat_rgb(1) == RAMP[-1] and heat_rgb(7) == RAMP[-1]
    html = image_grid([0.0] * 48 + [1.0], "img0")
    assert html.count("<i ") == 49 and "repeat(7,1fr)" in html
    assert html.count(f"rgba({RAMP[-1][0]},{RAMP[-1][1]},{RAMP[-1][2]},0.65)") == 1


def test_each_round_shows_the_models_own_answers_attention_and_top5(tiny_data, models):
    prepared, features = tiny_data
    test = load_data(prepared, features, "test")
    vocab = Vocabulary.load(prepared / "vocab.json")
    g = load_model(models / "hciae-g-mle/best.pt")
    d = load_model(models / "hciae-d-np-att/best.pt")
    cfg = ReportConfig(noises=2, beam_size=3)
    entry = dialog_entry(test, 1, vocab, {"G-MLE": g}, d, cfg, torch.device("cpu"))
    rounds = int(test.arrays["num_rounds"][1])
    assert len(entry["rounds"]) == rounds
    batch = test[[1]]
    with torch.no_grad():
        e, att = g.encode_attended(batch)
        torch.testing.assert_close(e, g.encode(batch))  # the training path's encoding
        scores = d.score_options(batch)[0]  # (R, O)
    for r, row in enumerate(entry["rounds"]):
        m = row["models"]["G-MLE"]
        assert set(m["answers"]) == {"greedy", "beam", "z1", "z2"}
        assert len(m["image_attention"]) == 49
        assert sum(m["image_attention"]) == pytest.approx(1, abs=1e-5)
        assert len(m["history_attention"]) == r + 1  # caption + the r earlier exchanges
        assert sum(m["history_attention"]) == pytest.approx(1, abs=1e-5)
        np.testing.assert_allclose(m["image_attention"], att.image[0, r].numpy(), rtol=1e-6)
        top = row["d_top"]
        best = scores[r].topk(5).values.tolist()
        assert [s for _, s, _ in top] == pytest.approx(best, abs=1e-6)
        gt = int(batch.gt_index[0, r])
        assert [flag for *_, flag in top] == [o == gt for o in scores[r].topk(5).indices.tolist()]
    again = dialog_entry(test, 1, vocab, {"G-MLE": g}, d, cfg, torch.device("cpu"))
    assert again == entry  # samples are seeded


def test_the_page_is_self_contained_and_escapes(tiny_data, models, tmp_path):
    prepared, features = tiny_data
    images = tmp_path / "images"
    images.mkdir()
    test = load_data(prepared, features, "test")
    for image_id in test.arrays["image_id"].tolist():
        Image.new("RGB", (40, 30), (200, 10, 10)).save(images / f"x_{image_id}.png")
    (models / "hciae-d-np-att").rename(models / "moved")  # D missing: left out, named
    try:
        result = build_gallery(
            ReportConfig(samples=2, noises=1), prepared=prepared, features=features,
            models_dir=models, images=images, pattern="x_%d.png", out=tmp_path / "g.html",
            figure=tmp_path / "g.png", device=torch.device("cpu"),
        )  # fmt: skip
    finally:
        (models / "moved").rename(models / "hciae-d-np-att")
    html = (tmp_path / "g.html").read_text()
    assert result == {"dialogs": 2, "missing": ["hciae-d-np-att"]}
    assert "Not trained, left out: hciae-d-np-att" in html
    assert html.count("data:image/jpeg;base64,") == 2 * 2  # the picture and its CSS variable
    assert "<script" not in html and "http" not in html.split("<body>")[1]
    assert "&lt;unk&gt;" in html or "<unk>" not in html  # tokens shown escaped
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_escapes_model_output():
    entry = {"image_id": 1, "caption": "<b>x</b>", "image": "data:,", "image_path": "p",
             "rounds": [{"question": "is it <script>?", "answer": "a & b",
                         "models": {"G-MLE": {"answers": {"greedy": "<i>"}}}}]}  # fmt: skip
    html = render_gallery([entry], {"G-MLE": "g"}, [], dataclasses.replace(ReportConfig()))
    assert "<script>?" not in html and "is it &lt;script&gt;?" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "a &amp; b" in html and "&lt;i&gt;" in html

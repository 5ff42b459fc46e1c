"""The ``gallery`` stage: test dialogs with what G-MLE, G-DIS and D make of each round, and where
HCIAE looked (paper Table 3 and its attention figures; rendered by ``gallery_page``).

For ``report.samples`` test dialogs (seeded picks), every round: the question, the human answer,
each G's greedy and beam-search answers and its answers under ``report.noises`` Gumbel noises
(ancestral samples seeded ``seed + i``, see ``pipeline.evaluation.report``), D's top-5 options
with their scores, and each G's attention: over the history facts (caption, earlier QA pairs;
round t sees facts 0..t) and over the 7x7 pool5 grid (features are the whole image resized
without a crop, so the grid covers the whole image).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipeline.atomic import atomic_path
from pipeline.config import ReportConfig
from pipeline.data.dataset import DialogDataset
from pipeline.data.loaders import load_data
from pipeline.data.vocab import Vocabulary
from pipeline.errors import InputError
from pipeline.evaluation.gallery_page import render_gallery
from pipeline.evaluation.report import load_published, pick_samples, role_key
from pipeline.features.images import to_rgb
from pipeline.models.decoder import Decoding, generate
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.generator import GenerativeModel
from pipeline.plots import plot_attention

TOP = 5  # D's best options shown per round
THUMBNAIL = 320  # longest side of an embedded image, pixels


def image_data_url(path: Path, size: int = THUMBNAIL) -> str:
    """The image at ``path`` as a JPEG ``data:`` URL, its longest side at most ``size``."""
    try:
        with Image.open(path) as img:
            img = to_rgb(img)
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=85)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read the image ({err})") from None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _texts(vocab: Vocabulary, ids: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    pairs = zip(ids.tolist(), lengths.tolist(), strict=True)
    return [" ".join(vocab.decode(row[:n])) for row, n in pairs]


@torch.no_grad()
def g_rounds(
    model: GenerativeModel, batch, vocab: Vocabulary, cfg: ReportConfig, rounds: int
) -> list[dict]:
    """One G on the ``rounds`` rounds of a one-dialog batch: answers and attention per round."""
    la = batch.answer.shape[-1]
    e, att = model.encode_attended(batch)  # (R, D)
    e = e[:rounds]
    answers = {
        "greedy": _texts(vocab, *generate(model.decoder, e, Decoding("greedy", max_len=la))),
        "beam": _texts(
            vocab,
            *generate(model.decoder, e, Decoding("beam", beam_size=cfg.beam_size, max_len=la)),
        ),
    }
    for i in range(1, cfg.noises + 1):
        rng = torch.Generator(e.device).manual_seed(cfg.seed + i)
        answers[f"z{i}"] = _texts(
            vocab, *generate(model.decoder, e, Decoding("sample", max_len=la), rng)
        )
    out = []
    for r in range(rounds):
        row = {"answers": {k: v[r] for k, v in answers.items()}}
        if att is not None:
            row["history_attention"] = att.history[0, r, : r + 1].tolist()  # facts 0..r
            row["image_attention"] = att.image[0, r].tolist()  # (K,)
        out.append(row)
    return out


@torch.no_grad()
def d_rounds(model: DiscriminativeModel, batch, vocab: Vocabulary, rounds: int) -> list[list]:
    """D's ``TOP`` options per round: ``[[text, score, is_ground_truth], ...]``."""
    scores = model.score_options(batch)[0, :rounds]  # (R, O)
    valid = batch.options_len[0, :rounds] > 0  # (R, O)
    scores = scores.masked_fill(~valid, float("-inf"))
    best = scores.topk(min(TOP, scores.shape[1]), dim=1)
    out = []
    for r in range(rounds):
        gt = int(batch.gt_index[0, r])
        out.append([
            [" ".join(vocab.decode(batch.options[0, r, o][: int(batch.options_len[0, r, o])]
                                    .tolist())), float(s), o == gt]
            for s, o in zip(best.values[r].tolist(), best.indices[r].tolist(), strict=True)
        ])  # fmt: skip
    return out


def dialog_entry(
    dataset: DialogDataset,
    index: int,
    vocab: Vocabulary,
    gs: dict[str, GenerativeModel],
    d: DiscriminativeModel | None,
    cfg: ReportConfig,
    device: torch.device,
) -> dict:
    """Everything the gallery shows about dialog ``index`` of ``dataset`` (no image yet)."""
    a = dataset.arrays
    batch = dataset[[index]].to(device)
    rounds = int(a["num_rounds"][index])

    def text(name: str, r: int | None = None) -> str:
        ids = a[name][index] if r is None else a[name][index, r]
        n = a[f"{name}_len"][index] if r is None else a[f"{name}_len"][index, r]
        return " ".join(vocab.decode(ids[:n]))

    entry = {
        "image_id": int(a["image_id"][index]),
        "caption": text("caption"),
        "rounds": [{"question": text("question", r), "answer": text("answer", r)}
                   for r in range(rounds)],
    }  # fmt: skip
    per_model = {role: g_rounds(g, batch, vocab, cfg, rounds) for role, g in gs.items()}
    top = d_rounds(d, batch, vocab, rounds) if d is not None else None
    for r, row in enumerate(entry["rounds"]):
        row["models"] = {role: rows[r] for role, rows in per_model.items()}
        if top is not None:
            row["d_top"] = top[r]
    return entry


def build_gallery(
    cfg: ReportConfig,
    *,
    prepared: Path,
    features: Path,
    models_dir: Path,
    images: Path,
    pattern: str,
    out: Path,
    figure: Path,
    device: torch.device,
) -> dict:
    """Write the page ``out`` and the PNG ``figure`` (one round of the first dialog, for
    ``report/README.md``). Missing models are left out and named on the page."""
    vocab = Vocabulary.load(prepared / "vocab.json")
    test = load_data(prepared, features, "test")
    roles = {"G-MLE": cfg.g_mle, "G-DIS": cfg.g_dis}
    gs = {role: load_published(models_dir, v, GenerativeModel, f"report.{role_key(role)}",
                               device) for role, v in roles.items()}  # fmt: skip
    d = load_published(models_dir, cfg.discriminator, DiscriminativeModel,
                       "report.discriminator", device)  # fmt: skip
    missing = [v for role, v in roles.items() if gs[role] is None]
    missing += [cfg.discriminator] if d is None else []
    gs = {role: g for role, g in gs.items() if g is not None}
    entries = []
    for index in pick_samples(len(test), cfg.samples, cfg.seed):
        entry = dialog_entry(test, index, vocab, gs, d, cfg, device)
        try:
            path = images / (pattern % entry["image_id"])
        except (TypeError, ValueError):
            raise InputError(
                f"features.patterns.test: {pattern!r}: expected one printf field"
            ) from None
        entry["image"] = image_data_url(path)
        entry["image_path"] = str(path)  # as given (from the repository root in dvc.yaml)
        entries.append(entry)
    models = {"G-MLE": cfg.g_mle, "G-DIS": cfg.g_dis, "D": cfg.discriminator}
    with atomic_path(out) as tmp:
        tmp.write_text(render_gallery(entries, models, missing, cfg))
    with atomic_path(figure) as tmp:
        attention_figure(entries, tmp, images, pattern)
    return {"dialogs": len(entries), "missing": missing}


def attention_figure(entries: list[dict], path: Path, images: Path, pattern: str) -> None:
    """The first round of the first dialog whose Gs have image attention: a PNG."""
    for entry in entries:
        row = entry["rounds"][0]
        maps = {
            f"{role}: {m['answers']['greedy']}": np.asarray(m["image_attention"])
            for role, m in row.get("models", {}).items() if "image_attention" in m
        }  # fmt: skip
        if maps:
            with Image.open(images / (pattern % entry["image_id"])) as img:
                rgb = np.asarray(to_rgb(img))
            title = f"{entry['caption']}\nQ: {row['question']}  (human: {row['answer']})"
            plot_attention(rgb, maps, path, title)
            return
    plot_attention(None, {}, path, "no G with image attention in the gallery")

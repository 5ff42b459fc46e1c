"""The ``report`` stage: Tables 1/2/4 from ``metrics/*.json``, Table-3 style samples, the
diversity of G-MLE vs G-DIS answers (§5.3), PNG plots, all in ``report/README.md``.

Missing pieces never crash the report: a variant without ``metrics/<v>.json`` shows as "not
evaluated", a missing ``models/<g_dis>/best.pt`` (e.g. the transfer stage was left out) removes
the G-DIS columns and says so.

G-DIS's answers under "different Gumbel noises" z1..zK: the forward pass of the straight-through
Gumbel-softmax sampler (Eq. 6) is the one-hot of argmax(logits + g), g ~ Gumbel — the Gumbel-max
trick, an exact draw from softmax(logits) whatever the temperature. So each noise zi is ancestral
sampling (``Generator.sample``, temperature 1) with a ``torch.Generator`` seeded ``seed + i``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.atomic import atomic_path, write_json
from pipeline.config import ReportConfig
from pipeline.data.batch import flat_rounds
from pipeline.data.dataset import DialogDataset
from pipeline.data.loaders import dialog_chunks, load_data
from pipeline.data.meanings import load_meanings
from pipeline.data.vocab import Vocabulary
from pipeline.errors import InputError
from pipeline.evaluation.compare import (
    Resampling,
    dialog_sums,
    diversity_delta,
    paired_delta,
    verdict,
)
from pipeline.evaluation.diversity import diversity, generic_set
from pipeline.evaluation.meaning import grade, shares_by_kind
from pipeline.evaluation.seeds import VERDICTS, majority, stability
from pipeline.models.checkpoint import load_checkpoint, load_model
from pipeline.models.decoder import Decoding, generate
from pipeline.models.generator import GenerativeModel
from pipeline.plots import plot_metric_bars
from pipeline.progress import progress_bar

METRIC_KEYS = ("mrr", "r@1", "r@5", "r@10", "mean_rank")
HEADERS = {
    "mrr": "MRR",
    "r@1": "R@1",
    "r@5": "R@5",
    "r@10": "R@10",
    "mean_rank": "Mean",
    "ndcg": "NDCG",
}
DIVERSITY_KEYS = ("distinct_share", "distinct_1", "distinct_2", "generic", "mean_length")


# ---- metrics tables ------------------------------------------------------------------------
def load_metrics(metrics_dir: Path, variants: Sequence[str]) -> dict[str, dict | None]:
    """``metrics/<v>.json`` of every variant, ``None`` where the file is missing."""
    out: dict[str, dict | None] = {}
    for v in variants:
        path = metrics_dir / f"{v}.json"
        try:
            out[v] = json.loads(path.read_text()) if path.is_file() else None
        except json.JSONDecodeError:
            raise InputError(f"{path}: not valid JSON (re-run the evaluate stage)") from None
    return out


def _cell(metrics: dict | None, key: str) -> str:
    if not metrics or key not in metrics:
        return "–"
    value = metrics[key]
    if key.startswith("r@"):
        return f"{100 * value:.2f}"  # percent, as the paper prints R@k
    return f"{value:.2f}" if key == "mean_rank" else f"{value:.4f}"


def metrics_table(metrics: dict[str, dict | None], variants: Sequence[str], keys) -> str:
    """Markdown table: one row per variant (Tables 1 and 2)."""
    lines = ["| Model | " + " | ".join(HEADERS[k] for k in keys) + " |"]
    lines.append("| --- |" + " ---: |" * len(keys))
    for v in variants:
        m = metrics.get(v)
        cells = [_cell(m, k) for k in keys] if m else ["not evaluated"] + [""] * (len(keys) - 1)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def adversarial_table(metrics: dict[str, dict | None], rows: dict[str, list[str]], keys) -> str:
    """Markdown table: each row shows a D variant's metrics and a G variant's (Table 4)."""
    head = [f"D {HEADERS[k]}" for k in keys] + [f"G {HEADERS[k]}" for k in keys]
    lines = [
        "| Model | D | G | " + " | ".join(head) + " |",
        "| --- | --- | --- |" + " ---: |" * len(head),
    ]
    for name, (d, g) in rows.items():
        cells = [_cell(metrics.get(d), k) for k in keys] + [_cell(metrics.get(g), k) for k in keys]
        lines.append(f"| {name} | {d} | {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def selected_epochs(models_dir: Path, variants: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``{variant: (epoch of best.pt, epochs trained)}`` for the variants that have a model.

    best.pt is the epoch with the best ``val`` MRR (early stopping ends training ``patience``
    epochs after it); the test split never takes part in the choice.
    """
    out = {}
    for v in variants:
        best, last = models_dir / v / "best.pt", models_dir / v / "last.pt"
        if best.is_file() and last.is_file():  # best.pt's history ends at its own epoch
            trained = len(load_checkpoint(last).get("history", []))
            out[v] = (int(load_checkpoint(best)["epoch"]) + 1, trained)
    return out


def check_adversarial(rows: dict) -> dict[str, list[str]]:
    for name, pair in rows.items():
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise InputError(
                f"params.yaml: report.adversarial.{name} must be [D variant, G variant]"
            )
    return {name: [str(p) for p in pair] for name, pair in rows.items()}


# ---- generated answers ---------------------------------------------------------------------
@torch.no_grad()
def generate_answers(
    model,
    dataset: DialogDataset,
    vocab: Vocabulary,
    *,
    noises: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    progress: bool = False,
    label: str = "generate",
) -> dict[str, list[list[str]]]:
    """Greedy answers and ``noises`` sampled ones (``z1`` ..) for every test round with a ground
    truth, in (dialog, round) order: ``{"greedy": [tokens, ...], "z1": [...], ...}``."""
    model.eval()
    gens = [torch.Generator(device).manual_seed(seed + i) for i in range(1, noises + 1)]
    out: dict[str, list[list[str]]] = {"greedy": [], **{f"z{i}": [] for i in range(1, noises + 1)}}
    n_batches = -(-len(dataset) // batch_size)
    with progress_bar(n_batches, label, "batch", enabled=progress) as advance:
        for _, batch in dialog_chunks(dataset, batch_size):
            batch = batch.to(device)
            e = model.encode(batch)[flat_rounds(batch)]  # (M, D)
            la = batch.answer.shape[-1]
            tokens, _ = generate(model.decoder, e, Decoding("greedy", max_len=la))  # (M, La)
            out["greedy"] += [vocab.decode(t) for t in tokens.tolist()]
            for i, gen in enumerate(gens, 1):
                tokens, _ = generate(model.decoder, e, Decoding("sample", max_len=la), gen)
                out[f"z{i}"] += [vocab.decode(t) for t in tokens.tolist()]
            advance(1)
    return out


def human_rounds(dataset: DialogDataset, vocab: Vocabulary) -> list[dict]:
    """Every test round with a ground truth, in (dialog, round) order: ids, caption, Q, A."""
    a = dataset.arrays
    out = []
    for d in range(len(dataset)):
        caption = " ".join(vocab.decode(a["caption"][d][: a["caption_len"][d]]))
        for r in range(int(a["num_rounds"][d])):
            if a["answer_len"][d, r] > 0:
                question = vocab.decode(a["question"][d, r][: a["question_len"][d, r]])
                out.append(
                    {
                        "image_id": int(a["image_id"][d]),
                        "round_id": r + 1,
                        "caption": caption,
                        "question": " ".join(question),
                        "answer": vocab.decode(a["answer"][d, r][: a["answer_len"][d, r]]),
                    }
                )
    return out


def pick_samples(n: int, k: int, seed: int) -> list[int]:
    """``k`` distinct round positions out of ``n``, seeded, in ascending order."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n, size=min(k, n), replace=False).tolist())


# ---- the report ----------------------------------------------------------------------------
def load_published(models_dir: Path, variant: str, kind: type, key: str, device: torch.device):
    """``models/<variant>/best.pt`` as a ``kind`` model (eval mode) on ``device``, or None when
    it is not trained; another kind is an error naming the params ``key``."""
    path = models_dir / variant / "best.pt"
    if not path.is_file():
        return None
    model = load_model(path).to(device)
    if not isinstance(model, kind):
        article = "a generative" if kind is GenerativeModel else "a discriminative"
        raise InputError(f"{path}: {key} must name {article} model")
    return model


def load_comparisons(path: Path | None) -> dict:
    """The ``compare`` stage's JSON, ``{}`` when there is none."""
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(f"{path}: not valid JSON (re-run the compare stage)") from None


def load_seeds(path: Path | None) -> dict | None:
    """``visdial seeds``' JSON (``report/seeds.json``: runs, variants, claims with verdict
    counts); ``None`` when there is none (the report then says "seeds not run")."""
    if path is None or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), dict):
        raise InputError(f"{path}: not the JSON of visdial seeds (re-run visdial seeds)")
    return doc


def per_dialog(rounds: list[dict], answers: list[list[str]]) -> list[list[tuple[str, ...]]]:
    """Answers (in round order) grouped by dialog, as token tuples."""
    groups: dict[int, list[tuple[str, ...]]] = {}
    for row, answer in zip(rounds, answers, strict=True):
        groups.setdefault(row["image_id"], []).append(tuple(answer))
    return list(groups.values())


def build_report(
    cfg: ReportConfig,
    *,
    prepared: Path,
    features: Path,
    models_dir: Path,
    metrics_dir: Path,
    live_dir: Path,
    out_dir: Path,
    device: torch.device,
    comparisons: Path | None = None,
    resampling: Resampling | None = None,
    image_use: Path | None = None,
    seeds: Path | None = None,
    progress: bool = True,
    pages_dir: Path | None = None,
) -> dict:
    """Write ``out_dir/{README.md, samples.json, diversity.json, metrics.png, diversity.png}``.

    ``pages_dir`` (default ``out_dir``) takes README.md and samples.json instead; README.md's
    links stay relative to ``out_dir``, where the ``publish`` stage copies both (dvc.yaml).

    ``comparisons`` (the ``compare`` stage's JSON) gives the claims table, ``seeds``
    (``visdial seeds``' JSON, optional) each verdict's stability over seed runs; ``resampling``
    the bootstrap of the diversity differences. Returns ``{"missing_metrics": [...],
    "missing_models": [...], "diversity": {...}}``.
    """
    adversarial = check_adversarial(cfg.adversarial)
    paired = [v for pair in adversarial.values() for v in pair]
    variants = list(dict.fromkeys([*cfg.generative, *cfg.discriminative, *paired]))
    metrics = load_metrics(metrics_dir, variants)
    vocab = Vocabulary.load(prepared / "vocab.json")
    test = load_data(prepared, features, "test")  # the reported split
    rounds = human_rounds(test, vocab)
    generated, missing_models = {}, []
    for role, variant in (("G-MLE", cfg.g_mle), ("G-DIS", cfg.g_dis)):
        model = load_published(models_dir, variant, GenerativeModel, "report.g_mle / report.g_dis",
                               device)  # fmt: skip
        if model is None:
            missing_models.append(variant)
            continue
        generated[role] = generate_answers(
            model,
            test,
            vocab,
            noises=cfg.noises,
            seed=cfg.seed,
            batch_size=cfg.batch_size,
            device=device,
            progress=progress,
            label=f"answers {variant}",
        )
    div = {"human": diversity([r["answer"] for r in rounds], cfg.generic)}
    for role, answers in generated.items():
        key = role_key(role)
        div[f"{key}_greedy"] = diversity(answers["greedy"], cfg.generic)
        if cfg.noises:
            div[f"{key}_sample"] = diversity(answers["z1"], cfg.generic)
    resampling = resampling or Resampling()
    if "G-MLE" in generated and "G-DIS" in generated and cfg.noises:
        div["g_dis_vs_g_mle_sample"] = diversity_delta(
            per_dialog(rounds, generated["G-DIS"]["z1"]),
            per_dialog(rounds, generated["G-MLE"]["z1"]),
            generic_set(cfg.generic),
            resampling,
        )
    graded = grade_meanings(prepared / "meanings.json", rounds, generated, resampling)
    samples = []
    for i in pick_samples(len(rounds), cfg.samples, cfg.seed):
        row = {**rounds[i], "answer": " ".join(rounds[i]["answer"])}
        if "G-MLE" in generated:
            row["g_mle"] = " ".join(generated["G-MLE"]["greedy"][i])
        if "G-DIS" in generated:
            row["g_dis"] = [
                " ".join(generated["G-DIS"][f"z{k}"][i]) for k in range(1, cfg.noises + 1)
            ]
        samples.append(row)

    out_dir.mkdir(parents=True, exist_ok=True)
    present = {v: m for v, m in metrics.items() if m}
    keys = METRIC_KEYS + (("ndcg",) if any("ndcg" in m for m in present.values()) else ())
    bars = ("mrr", "r@1", "r@5", "r@10", *keys[5:])
    with atomic_path(out_dir / "metrics.png") as tmp:
        plot_metric_bars(present, tmp, bars, "test retrieval metrics per variant")
    with atomic_path(out_dir / "diversity.png") as tmp:
        rows = {k: v for k, v in div.items() if "distinct_share" in v}
        plot_metric_bars(rows, tmp, DIVERSITY_KEYS, "diversity of test answers")
    pages_dir = pages_dir or out_dir
    pages_dir.mkdir(parents=True, exist_ok=True)
    write_json(pages_dir / "samples.json", samples)
    write_json(out_dir / "diversity.json", div)
    write_json(out_dir / "meaning.json", graded)
    text = render_markdown(
        cfg,
        adversarial,
        metrics,
        keys,
        samples,
        div,
        missing_models,
        claims=load_comparisons(comparisons),
        seeds=load_seeds(seeds),
        image_use=load_comparisons(image_use),
        graded=graded,
        transfer=transfer_section(models_dir, [cfg.g_dis, *(g for _, g in adversarial.values())]),
        curves={v: live_dir / v / "curves.png" for v in variants},
        selection=selected_epochs(models_dir, variants),
        out_dir=out_dir,
    )
    with atomic_path(pages_dir / "README.md") as tmp:
        tmp.write_text(text)
    return {
        "missing_metrics": [v for v, m in metrics.items() if m is None],
        "missing_models": missing_models,
        "diversity": div,
    }


def render_markdown(
    cfg: ReportConfig,
    adversarial: dict[str, list[str]],
    metrics: dict[str, dict | None],
    keys: Sequence[str],
    samples: list[dict],
    div: dict[str, dict],
    missing_models: list[str],
    curves: dict[str, Path],
    out_dir: Path,
    selection: dict[str, tuple[int, int]] | None = None,
    claims: dict | None = None,
    graded: dict | None = None,
    transfer: list[str] | None = None,
    image_use: dict | None = None,
    seeds: dict | None = None,
) -> str:
    md = [
        "# Report: Best of Both Worlds on this data",
        "",
        f"**[Gallery](gallery.html)** (open it from disk): {cfg.samples} test dialogs with "
        f"{cfg.g_mle}'s, {cfg.g_dis}'s and {cfg.discriminator}'s answers and HCIAE's attention; "
        "one round of it: ![HCIAE's image attention, one round](gallery.png)",
        "",
    ]
    if claims:
        md += claims_section(claims, seeds)
    if image_use:
        paired = [v for pair in adversarial.values() for v in pair]
        md += image_use_section(image_use, [*cfg.generative, *cfg.discriminative, *paired])
    md += [
        "Test split (model selection read only the val split). R@k in percent (the JSON "
        "files hold fractions); MRR in [0, 1]; "
        "Mean = mean rank of the ground truth among 100 options (ties: expected rank, "
        "see docs/evaluation.md).",
        "",
    ]
    missing = [v for v, m in metrics.items() if m is None]
    if missing:
        md += [f"**Not evaluated** (no `metrics/<variant>.json`): {', '.join(missing)}.", ""]
    md += ["## Table 1: generative models", "", metrics_table(metrics, cfg.generative, keys), ""]
    mle, dis = metrics.get(cfg.g_mle), metrics.get(cfg.g_dis)
    if mle and dis:
        delta = 100 * (dis["r@5"] - mle["r@5"])
        md += [
            f"{cfg.g_dis} − {cfg.g_mle}: R@5 {delta:+.2f} points, MRR "
            f"{dis['mrr'] - mle['mrr']:+.4f} (paper: +1.73 points, +0.0081; CIs in the claims "
            "table).",
            "",
        ]
    md += [
        "## Table 2: discriminative models",
        "",
        metrics_table(metrics, cfg.discriminative, keys),
        "",
    ]
    md += [
        "## Table 4: adversarial training (D and G metrics)",
        "",
        adversarial_table(metrics, adversarial, keys),
        "",
    ]
    md += ["![metrics per variant](metrics.png)", ""]
    if selection:
        md += ["## Model selection", "", "best.pt = the epoch with the best val MRR.", ""]
        md += ["| Model | selected epoch | epochs trained |", "| --- | ---: | ---: |"]
        md += [f"| {v} | {best} | {n} |" for v, (best, n) in selection.items()] + [""]
    md += transfer or []
    md += _samples_section(cfg, samples, missing_models)
    md += _diversity_section(div, missing_models)
    md += _meaning_section(graded or {})
    have = {v: p for v, p in curves.items() if p.is_file()}
    md += ["## Training curves", ""]
    if not have:
        md += ["No `live/<variant>/curves.png` found.", ""]
    for v, p in have.items():
        md += [f"### {v}", "", f"![{v} training curves]({os.path.relpath(p, out_dir)})", ""]
    return "\n".join(md)


def _samples_section(cfg: ReportConfig, samples: list[dict], missing: list[str]) -> list[str]:
    md = [f"## Table 3: qualitative samples ({len(samples)} test rounds, seed {cfg.seed})", ""]
    md += [
        f"G-MLE = `{cfg.g_mle}` (greedy); G-DIS = `{cfg.g_dis}` sampled under Gumbel noise "
        f"z1..z{cfg.noises} (seeds {cfg.seed + 1}..{cfg.seed + cfg.noises}).",
        "",
    ]
    md += [
        f"**Missing model:** `models/{v}/best.pt` not found; its answers are left out."
        for v in missing
    ] + ([""] if missing else [])
    for s in samples:
        md += [f"**image {s['image_id']}, round {s['round_id']}** — _{s['caption']}_", ""]
        md += [f"- Q: {s['question']}", f"- A (human): {s['answer'] or '∅'}"]
        if "g_mle" in s:
            md.append(f"- G-MLE: {s['g_mle'] or '∅'}")
        for k, ans in enumerate(s.get("g_dis", []), 1):
            md.append(f"- G-DIS (z{k}): {ans or '∅'}")
        md.append("")
    return md


def _diversity_section(div: dict[str, dict], missing: list[str]) -> list[str]:
    md = ["## Diversity of test answers", ""]
    md += [
        "distinct = share of different answers; distinct-1/2 = distinct uni/bigrams over all "
        "uni/bigrams; generic = share of answers that are a generic phrase "
        "(`report.generic`); length in tokens. `sample` = the z1 draw.",
        "",
    ]
    md += [
        "| Answers | n | distinct | distinct-1 | distinct-2 | generic | mean length |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, d in div.items():
        if "distinct_share" not in d:
            continue
        md.append(
            f"| {name} | {d['answers']} | {100 * d['distinct_share']:.1f}% | "
            f"{d['distinct_1']:.3f} | {d['distinct_2']:.3f} | {100 * d['generic']:.1f}% | "
            f"{d['mean_length']:.2f} |"
        )
    if missing:
        md.append(f"\nNo rows for {', '.join(missing)} (model missing).")
    delta = div.get("g_dis_vs_g_mle_sample")
    if delta:
        md += [
            "",
            "G-DIS − G-MLE on sampled answers (z1), paired bootstrap 95 % CI over test dialogs "
            "(paper §5.3: G-DIS is more diverse and less generic):",
            "",
            "| statistic | G-DIS | G-MLE | Δ [95 % CI] | verdict |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        claimed = {"distinct_answers": 1, "distinct_2": 1, "generic": -1}  # paper's direction
        for stat, row in delta.items():
            fmt = ".0f" if stat == "distinct_answers" else ".3f"
            verdict_ = verdict(row["ci_low"], row["ci_high"], claimed[stat])
            ci = _interval(row, lambda x, f=fmt: f"{x:+{f}}")
            md.append(
                f"| {stat} | {row['a']:{fmt}} | {row['b']:{fmt}} | {row['delta']:+{fmt}} {ci} "
                f"| {verdict_} |"
            )
    md += ["", "![diversity](diversity.png)", ""]
    return md


TRANSFER_KEYS = (
    ("val_mrr", "val MRR (G)"),
    ("val_lg", "L_G of G's samples"),
    ("val_d_margin", "D margin s(â) − s(a_gt)"),
    ("val_d_fooled", "share D prefers â"),
    ("val_d_greedy_rank", "D's rank of G's greedy answer (1–101)"),
)


def transfer_section(models_dir: Path, variants: Sequence[str]) -> list[str]:
    """Did knowledge transfer move G toward what D prefers? Epoch 0 (before) vs the selected
    epoch (after), on the val split, from the transfer checkpoints' histories."""
    rows = []
    for v in dict.fromkeys(variants):
        path = models_dir / v / "best.pt"
        if not path.is_file():
            continue
        state = load_checkpoint(path)
        before, history = state.get("initial"), state.get("history") or []
        if before and history:
            rows.append((v, before, history[-1]))
    if not rows:
        return []
    md = [
        "## Did knowledge transfer move G? (val split, before → after)",
        "",
        "Epoch 0 = the pretrained G (HCIAE-G-MLE) against the pretrained D; after = the selected "
        "epoch. D scores G's sampled answer â and the ground truth a_gt (Eq. 5); the last column "
        "ranks G's greedy answer among the round's 100 options by D's score.",
        "",
        "| model | epoch | " + " | ".join(name for _, name in TRANSFER_KEYS) + " |",
        "| --- | ---: |" + " ---: |" * len(TRANSFER_KEYS),
    ]
    for v, before, after in rows:
        for row in (before, after):
            cells = [f"{row[k]:.4g}" if k in row else "–" for k, _ in TRANSFER_KEYS]
            md.append(f"| {v} | {row['epoch']} | " + " | ".join(cells) + " |")
    return md + [""]


def role_key(role: str) -> str:
    """``G-MLE`` -> ``g_mle``: a role as the JSON files key it."""
    return role.lower().replace("-", "_")


def grade_meanings(
    path: Path, rounds: list[dict], generated: dict[str, dict], how: Resampling
) -> dict:
    """Answers graded by meaning (``pipeline.evaluation.meaning``) where ``path`` exists (the
    demo): per model and decoding, shares by question kind; and G-DIS − G-MLE over all rounds
    with a paired bootstrap CI. ``{}`` without an answer key."""
    if not path.is_file():
        return {}
    meanings = load_meanings(path)
    out: dict[str, dict] = {}
    records: dict[str, list[dict]] = {}
    for role, answers in generated.items():
        for decoding in ("greedy", "z1"):
            if decoding in answers:
                key = f"{role_key(role)}_{decoding}"
                records[key] = grade(meanings, rounds, answers[decoding])
                out[key] = shares_by_kind(records[key], how)
    for decoding in ("greedy", "z1"):
        a, b = records.get(f"g_dis_{decoding}"), records.get(f"g_mle_{decoding}")
        if a and b:
            out[f"g_dis_vs_g_mle_{decoding}"] = paired_correct(a, b, how)
    return out


def paired_correct(a: list[dict], b: list[dict], how: Resampling) -> dict:
    """A − B in the share of correct answers over the same graded rounds, CI over dialogs."""
    ids = [r["image_id"] for r in a]
    sums = dialog_sums(ids, [r["correct"] for r in a], [r["correct"] for r in b])
    return paired_delta(*sums, how)


MEANING_COLUMNS = (("g_mle_greedy", "G-MLE greedy"), ("g_dis_greedy", "G-DIS greedy"),
                   ("g_mle_z1", "G-MLE sample"), ("g_dis_z1", "G-DIS sample"))  # fmt: skip


def _meaning_section(graded: dict) -> list[str]:
    columns = [(k, name) for k, name in MEANING_COLUMNS if k in graded]
    if not columns:
        return []
    md = [
        "## Answers graded by meaning (demo answer key)",
        "",
        "Share of G's answers to the test questions whose meaning is the fact in the image "
        "(`pipeline/evaluation/meaning.py`), [95 % CI] over dialogs; generic = share of "
        "answers like \"i can't tell\". The paper's §5.3 claim: G-MLE answers safe and "
        "generic, G-DIS more informative.",
        "",
        "| question kind | rounds | "
        + " | ".join(f"{n}: correct / generic" for _, n in columns)
        + " |",
        "| --- | ---: |" + " ---: |" * len(columns),
    ]
    kinds = list(graded[columns[0][0]])
    for kind in kinds:
        cells = []
        for key, _ in columns:
            r = graded[key].get(kind)
            cells.append(
                "–"
                if r is None
                else f"{100 * r['correct']:.0f}% {_pct_ci(r)} / {100 * r['generic']:.0f}%"
            )
        n = graded[columns[0][0]][kind]["rounds"]
        md.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    for decoding, name in (("greedy", "greedy"), ("z1", "sampled (z1)")):
        d = graded.get(f"g_dis_vs_g_mle_{decoding}")
        if d:
            v = verdict(d["ci_low"], d["ci_high"], 1.0)
            md += [
                "",
                f"G-DIS − G-MLE, correct share of {name} answers over all graded rounds: "
                f"{_signed('r@1', d['delta'])} points {_ci('r@1', d)} ({v}).",
            ]
    return md + [""]


def _interval(row: dict, show) -> str:
    """``[low, high]`` of a row's CI, each bound through ``show``; ``[no CI]`` without one."""
    if row["ci_low"] is None:
        return "[no CI]"
    return f"[{show(row['ci_low'])}, {show(row['ci_high'])}]"


def _ci(metric: str, row: dict) -> str:
    return _interval(row, lambda x: _signed(metric, x))


def _pct_ci(row: dict) -> str:
    return _interval(row, lambda x: f"{100 * x:.0f}")


def _signed(metric: str, value: float) -> str:
    if metric.startswith("r@"):
        return f"{100 * value:+.2f}"
    return f"{value:+.2f}" if metric == "mean_rank" else f"{value:+.4f}"


CLAIM_METRICS = ("mrr", "r@5", "mean_rank")


def image_use_section(used: dict, order: Sequence[str] = ()) -> list[str]:
    """The image ablation (``compare``'s ``image_use``): MRR with each dialog's own image and
    with the next dialog's, per model; the models in ``order`` first (the tables' order)."""
    rank = {name: i for i, name in enumerate(dict.fromkeys(order))}
    used = dict(sorted(used.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))
    md = [
        "## Do the models look at the image?",
        "",
        "Every test round scored twice: with its dialog's image and with the next dialog's "
        "(`evaluate.shuffled_images`). A model that uses the image ranks the human answer worse "
        "with the wrong one. Δ = MRR(own image) − MRR(shuffled), paired 95 % CI over dialogs.",
        "",
        "| model | MRR | MRR, shuffled images | Δ [95 % CI] | verdict |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, row in used.items():
        md.append(
            f"| {name} | {row['mrr']:.4f} | {row['mrr_shuffled']:.4f} | "
            f"{row['delta']:+.4f} {_interval(row, lambda x: f'{x:+.4f}')} | {row['verdict']} |"
        )
    users = [n for n, r in used.items() if r["verdict"] == "uses the image"]
    if not users:
        md += [
            "",
            "**No model uses the image detectably**: on this data every number in this report "
            "measures answering from the caption, the question and the history.",
        ]
    else:
        md += ["", f"{len(users)} of {len(used)} models use the image detectably."]
    return md + [""]


def claims_section(claims: dict, seeds: dict | None = None) -> list[str]:
    """The claims table: each pair's paper Δ, our Δ [95 % CI] and the verdict, per metric, with
    the verdict's stability over the seed runs of ``seeds`` (``visdial seeds``' JSON; ``None``:
    seeds not run), and a summary that calls a claim reproduced only when most runs did."""
    runs = (seeds or {}).get("runs") or []
    named = ", ".join(f"{r['name']} {tuple(r['seeds'])}" for r in runs)
    stable = (
        f"the runs of `report/seeds.md` that gave it: k of n runs (n = {len(runs)}: {named})."
        if seeds
        else "its stability over seed runs, here **seeds not run** (`visdial seeds`, "
        "docs/evaluation.md): every verdict is this one run's."
    )
    md = [
        "## Claims of the paper on this data",
        "",
        "A − B on the test split; R@5 in points, Mean = mean rank (lower is better). "
        "[95 % CI] = paired percentile bootstrap over test dialogs; **reproduced** = the CI "
        "excludes 0 on the paper's side, **contradicted** = on the other side, "
        "**not significant** = it contains 0. Details: `report/comparisons.json`.",
        "",
        "A single run's CI covers test-set sampling only, not training noise (another seed, or "
        f"another CPU, trains other models: docs/evaluation.md), so each verdict is followed by "
        f"{stable}",
        "",
    ]
    head = [f"{HEADERS[m]}: paper / ours [95 % CI] / verdict" for m in CLAIM_METRICS]
    md += ["| A | B | " + " | ".join(head) + " |", "| --- | --- |" + " --- |" * len(head)]
    across = (seeds or {}).get("claims") or {}
    for name, row in claims.items():
        a, _, b = name.partition("_vs_")
        if "missing" in row:
            md.append(f"| {a} | {b} | not evaluated: {', '.join(row['missing'])} |")
            continue
        cells = []
        for m in CLAIM_METRICS:
            r = row.get(m)
            if not r:
                cells.append("–")
                continue
            paper = "–" if r["paper"] is None else _signed(m, r["paper"])
            ours = f"{_signed(m, r['delta'])} {_ci(m, r)}"
            runs_of = f" ({stability(r['verdict'], across.get(name, {}).get(m))})" if seeds else ""
            cells.append(f"{paper} / {ours} / **{r['verdict']}**{runs_of}")
        md.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    return md + ["", *_claims_summary(claims, seeds), ""]


def _claims_summary(claims: dict, seeds: dict | None) -> list[str]:
    """One paragraph: claim metrics reproduced / contradicted in most seed runs (only those are
    called reproduced), and this run's own count beside it."""
    shown = [(name, m, row[m]) for name, row in claims.items() if "missing" not in row
             for m in CLAIM_METRICS if row.get(m)]  # fmt: skip
    here = {v: sum(r["verdict"] == v for _, _, r in shown) for v in VERDICTS}
    alone = ", ".join(f"{here[v]} {v}" for v in VERDICTS)
    if not seeds:
        return [
            f"**Summary** ({len(shown)} claim metrics): seeds not run, so no claim is called "
            f"reproduced across runs; this run alone: {alone}."
        ]
    across = seeds.get("claims") or {}
    most = {(name, m): majority(across.get(name, {}).get(m) or {}) for name, m, _ in shown}
    by_verdict = {v: [k for k, got in most.items() if got == v] for v in VERDICTS}
    listed = {}
    for name, m in by_verdict["reproduced"]:
        listed.setdefault(name.replace("_vs_", " − "), []).append(HEADERS[m])
    which = "; ".join(f"{pair} ({', '.join(ms)})" for pair, ms in listed.items()) or "none"
    unsettled = sum(got is None for got in most.values())
    return [
        f"**Summary** ({len(shown)} claim metrics, {len(seeds.get('runs') or [])} seed runs): "
        f"**reproduced in most runs: {len(by_verdict['reproduced'])}** — {which}; contradicted "
        f"in most runs: {len(by_verdict['contradicted'])}; not significant in most runs: "
        f"{len(by_verdict['not significant'])}; no verdict in most runs (or not in the seed runs): "
        f"{unsettled}. This run alone: {alone}."
    ]

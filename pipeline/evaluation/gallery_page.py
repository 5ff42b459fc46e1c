"""``report/gallery.html``: one self-contained page (no script, no external file) from the
entries of ``pipeline.evaluation.gallery``.

Each dialog's image is embedded once, as a CSS variable; each image-attention map is a 7x7 grid
of translucent cells laid over it (colour = weight / the map's largest weight), and history
attention is a bar per fact. Everything shown is escaped.
"""

from __future__ import annotations

import math
from html import escape

from pipeline.config import ReportConfig

# A perceptual blue -> cyan -> yellow -> red ramp for weights in [0, 1] (also in serve's page).
RAMP = ((49, 54, 149), (69, 117, 180), (116, 173, 209), (254, 224, 144), (244, 109, 67),
        (165, 0, 38))  # fmt: skip

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
.dialog { border-top: 2px solid #ccc; padding-top: .5em; }
.head { display: flex; gap: 1em; align-items: flex-start; }
.head img { max-width: 320px; border: 1px solid #999; }
table { border-collapse: collapse; width: 100%; margin-top: .5em; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 6px; vertical-align: top; font-size: 13px; }
th { background: #f3f3f3; text-align: left; }
.att { position: relative; width: 112px; height: 112px; background-size: 100% 100%;
       background-image: var(--img); display: inline-block; margin-right: 4px; }
.grid { position: absolute; inset: 0; display: grid; grid-template-columns: repeat(7, 1fr); }
.grid i { display: block; }
.bar { background: #4575b4; height: 9px; display: inline-block; vertical-align: middle; }
.fact { white-space: nowrap; font-size: 11px; }
.gt { font-weight: bold; color: #1a7f37; }
.note { color: #8a4b00; }
small { color: #666; }
"""


def heat_rgb(x: float) -> tuple[int, int, int]:
    """The ramp's colour at ``x`` in [0, 1] (linear between stops)."""
    x = min(max(float(x), 0.0), 1.0) * (len(RAMP) - 1)
    i = min(int(x), len(RAMP) - 2)
    t = x - i
    return tuple(round(a + (b - a) * t) for a, b in zip(RAMP[i], RAMP[i + 1], strict=True))


def image_grid(weights: list[float], css_class: str) -> str:
    """A 7x7 (or s x s) grid of cells coloured by ``weights`` over the dialog's image."""
    side = math.isqrt(len(weights))
    top = max(weights) or 1.0
    cells = "".join(
        '<i style="background:rgba({},{},{},{:.2f})"></i>'.format(
            *heat_rgb(w / top), 0.15 + 0.5 * w / top
        )
        for w in weights
    )
    style = f"grid-template-columns:repeat({side},1fr)"
    return f'<span class="att {css_class}"><span class="grid" style="{style}">{cells}</span></span>'


def history_bars(weights: list[float], facts: list[str]) -> str:
    rows = [
        f'<div class="fact"><span class="bar" style="width:{60 * w:.0f}px"></span> '
        f"{w:.2f} {escape(fact[:40])}</div>"
        for w, fact in zip(weights, facts, strict=False)
    ]
    return "".join(rows)


def _answers(answers: dict[str, str]) -> str:
    parts = [f"<b>{escape(k)}</b>: {escape(v)}" for k, v in answers.items()]
    return "<br>".join(parts)


def _round_row(r: int, row: dict, facts: list[str], css_class: str, roles: list[str]) -> str:
    cells = [f"<td>{r + 1}</td><td>{escape(row['question'])}<br>"
             f"<span class='gt'>{escape(row['answer'])}</span></td>"]  # fmt: skip
    for role in roles:
        m = row.get("models", {}).get(role)
        if m is None:
            cells.append("<td></td>")
            continue
        att = ""
        if "image_attention" in m:
            att = image_grid(m["image_attention"], css_class)
            att += history_bars(m["history_attention"], facts[: r + 1])
        cells.append(f"<td>{_answers(m['answers'])}</td><td>{att}</td>")
    top = row.get("d_top")
    if top is not None:
        items = [
            f"<span class='{'gt' if gt else ''}'>{escape(t)}</span> <small>{s:.2f}</small>"
            for t, s, gt in top
        ]
        cells.append(f"<td>{'<br>'.join(items)}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _dialog(n: int, entry: dict, roles: list[str], with_d: bool) -> str:
    css_class = f"img{n}"
    facts = [entry["caption"]] + [f"{x['question']} {x['answer']}" for x in entry["rounds"]]
    head = "".join(f"<th>{escape(r)} answers</th><th>{escape(r)} attention</th>" for r in roles)
    head = f"<tr><th>#</th><th>question / <span class='gt'>human</span></th>{head}"
    head += "<th>D's top 5 (score)</th></tr>" if with_d else "</tr>"
    rows = "".join(_round_row(r, row, facts, css_class, roles) for r, row in
                   enumerate(entry["rounds"]))  # fmt: skip
    return (
        f"<style>.{css_class} {{ --img: url({entry['image']}); }}</style>"
        f"<section class='dialog' id='image-{entry['image_id']}'>"
        f"<h2>Image {entry['image_id']}</h2><div class='head'>"
        f"<img src='{entry['image']}' alt='image {entry['image_id']}'>"
        f"<p><b>Caption:</b> {escape(entry['caption'])}<br>"
        f"<small>{escape(entry['image_path'])}</small></p></div>"
        f"<table>{head}{rows}</table></section>"
    )


def render_gallery(
    entries: list[dict], models: dict[str, str], missing: list[str], cfg: ReportConfig
) -> str:
    """The whole page."""
    roles = [r for r in ("G-MLE", "G-DIS") if any(r in x["rounds"][0].get("models", {})
                                                   for x in entries)]  # fmt: skip
    with_d = any("d_top" in x["rounds"][0] for x in entries)
    named = ", ".join(f"{role} = {escape(v)}" for role, v in models.items())
    note = (f"<p class='note'>Not trained, left out: {escape(', '.join(missing))}</p>"
            if missing else "")  # fmt: skip
    noises = ", ".join(f"z{i}" for i in range(1, cfg.noises + 1))
    body = "".join(_dialog(n, x, roles, with_d) for n, x in enumerate(entries))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Visual dialog gallery</title>
<style>{STYLE}</style></head><body>
<h1>Gallery: {len(entries)} test dialogs</h1>
<p>{named}. Answers: greedy, beam search ({cfg.beam_size} beams), and samples under Gumbel
noises {noises} (seeds {cfg.seed}+i). Attention (HCIAE): the 7&times;7 pool5 grid over the image
(red = the map's largest weight) and the weight of each history fact (caption, then earlier
question-answer pairs). Seed {cfg.seed}.</p>{note}
{body}
</body></html>
"""

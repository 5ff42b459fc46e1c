"""Generated answers graded by meaning, where the truth is known (the demo's ``meanings.json``).

Retrieval metrics say how a model ranks 100 given options; they do not say whether G, talking
freely, says what the image shows. The demo generator knows both sides: what every answer
string means (``"it's red"`` → colour red, ``"yep, i see one"`` → yes) and what every round's
question is in the image (``pipeline.demo.generate.meanings_doc``). So a generated answer is

* **correct** when its meaning equals the round's truth (the scene's fact; the human answer
  itself is generic in ~6 % of answerable rounds, and G is not blamed for not copying that);
* **generic** when its meaning is ``["generic"]`` ("i can't tell", "not sure" …);
* **unparsed** when it is no answer the generator writes (G made up a word salad): wrong.

Rounds of the ``unanswerable`` kind (their truth is generic) are graded like the others: a
generic answer is right there. Shares are per question kind and over all rounds, with a
percentile bootstrap CI over dialogs (``pipeline.evaluation.compare``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.data.meanings import GENERIC, Meanings
from pipeline.evaluation.compare import Resampling, bootstrap_ci, dialog_sums

ALL = "all"  # the row over every graded round


def grade(
    meanings: Meanings, rounds: Sequence[dict], answers: Sequence[Sequence[str]]
) -> list[dict]:
    """One record per round with a known truth: image_id, kind, correct, generic, parsed.

    ``rounds[i]`` has ``image_id`` and ``round_id`` (1-based); ``answers[i]`` is the generated
    answer as tokens.
    """
    out = []
    for row, answer in zip(rounds, answers, strict=True):
        key = (int(row["image_id"]), int(row["round_id"]))
        if key not in meanings.rounds:
            continue
        kind, truth = meanings.rounds[key]
        meaning = meanings.answers.get(tuple(answer))
        out.append(
            {
                "image_id": key[0],
                "kind": kind,
                "correct": meaning == truth,
                "generic": meaning == GENERIC,
                "parsed": meaning is not None,
            }
        )
    return out


def shares_by_kind(records: list[dict], how: Resampling) -> dict[str, dict]:
    """Per question kind (and ``all``): rounds, correct share with its bootstrap CI over
    dialogs, generic and unparsed shares."""
    out = {}
    kinds = sorted({r["kind"] for r in records})
    for kind in [ALL, *kinds]:
        chosen = [r for r in records if kind in (ALL, r["kind"])]
        if not chosen:
            continue
        ids = [r["image_id"] for r in chosen]
        correct, count = dialog_sums(ids, [r["correct"] for r in chosen])
        low, high = bootstrap_ci(
            lambda idx, c=correct, n=count: c[idx].sum(-1) / n[idx].sum(-1), len(count), how
        )
        out[kind] = {
            "rounds": len(chosen),
            "correct": float(correct.sum() / count.sum()),
            "ci_low": low,
            "ci_high": high,
            "generic": float(np.mean([r["generic"] for r in chosen])),
            "unparsed": float(np.mean([not r["parsed"] for r in chosen])),
        }
    return out

"""The demo dataset: procedurally generated, image-grounded visual dialogs in VisDial v0.9 format.

Real VisDial/COCO cannot be downloaded everywhere, so ``generate_demo`` writes a small stand-in
that the whole pipeline runs on in minutes on a CPU: scenes of 2-D shapes (``demo_scenes``), a
caption naming some of them and 10 rounds of questions whose answers need the image and the
history (``demo_dialogs``), 100 answer options per round. Everything follows from ``cfg.seed``:
the same seed gives byte-identical JSON and images. See ``docs/demo-dataset.md``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.atomic import atomic_path
from pipeline.config import DemoConfig
from pipeline.demo.dialogs import ANSWER_MEANING, GENERIC, DialogWriter, answer_options
from pipeline.demo.scenes import Scene, draw_scene, sample_scene
from pipeline.errors import InputError

SPLITS = ("train", "val")
VAL_ID_OFFSET = 500_000  # train image ids are 1..N, val ids 500001..
JSON_NAME = "visdial_0.9_{split}.json"
MEANINGS_NAME = "meanings.json"  # the demo's answer key (``meanings_doc``)
IMAGE_DIR = "images"
MIN_IMAGE_SIZE = 64
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Round:
    question: str
    answer: str
    options: list[str]
    gt_index: int
    kind: str  # question kind, see ``demo_dialogs.QUESTION_KINDS``
    subject: int | None  # index into ``scene.objects`` of the object asked about, if one
    truth: tuple = ()  # what the image says (the question's meaning; the answer may be generic)


@dataclass(frozen=True)
class DemoDialog:
    scene: Scene
    caption: str
    rounds: list[Round]


def check_demo_config(cfg: DemoConfig, source: str = "params.yaml") -> None:
    """Raise ``InputError`` naming the ``demo.*`` key of a setting the generator cannot use."""
    for key in ("train_dialogs", "val_dialogs", "dialogs_per_image"):
        n = getattr(cfg, key)
        if not 1 <= n < VAL_ID_OFFSET:
            raise InputError(
                f"{source}: demo.{key} = {n} must be between 1 and {VAL_ID_OFFSET - 1}"
            )
    if cfg.image_size < MIN_IMAGE_SIZE:
        raise InputError(
            f"{source}: demo.image_size = {cfg.image_size} must be >= {MIN_IMAGE_SIZE}"
        )
    try:
        name = cfg.image_pattern % 1
    except (TypeError, ValueError):
        raise InputError(
            f"{source}: demo.image_pattern = {cfg.image_pattern!r} must hold one integer field "
            "such as %012d"
        ) from None
    if os.sep in name or "/" in name or not name.lower().endswith(IMAGE_SUFFIXES):
        raise InputError(
            f"{source}: demo.image_pattern = {cfg.image_pattern!r} must give a plain file name "
            f"ending in one of {', '.join(IMAGE_SUFFIXES)}"
        )


def build_split(cfg: DemoConfig, split: str) -> list[DemoDialog]:
    """The dialogs of one split (text and scenes, no pixels); deterministic in ``cfg.seed``.

    Scenes and dialogs draw from two streams, so the images do not depend on the dialog design.
    Train writes ``cfg.dialogs_per_image`` dialogs (consecutive) about each image: features cost
    per image, training per dialog. The val split (the pipeline's test role) keeps one dialog per
    image, so "another dialog's image" is always another image.
    """
    scene_rng = random.Random(f"visdial-demo/{cfg.seed}/{split}/scenes")
    rng = random.Random(f"visdial-demo/{cfg.seed}/{split}")
    count = cfg.train_dialogs if split == "train" else cfg.val_dialogs
    per_image = cfg.dialogs_per_image if split == "train" else 1
    first_id = 1 if split == "train" else VAL_ID_OFFSET + 1
    dialogs: list[DemoDialog] = []
    for k in range(-(-count // per_image)):
        scene = sample_scene(scene_rng, first_id + k)
        for _ in range(min(per_image, count - len(dialogs))):
            writer = DialogWriter(scene, rng)
            caption = writer.caption()
            rounds = []
            for turn, answer in writer.rounds():
                options, gt_index = answer_options(answer, rng)
                rounds.append(
                    Round(
                        turn.question, answer, options, gt_index, turn.kind, turn.subject,
                        turn.meaning,
                    )
                )  # fmt: skip
            dialogs.append(DemoDialog(scene, caption, rounds))
    return dialogs


def to_visdial(dialogs: list[DemoDialog], split: str) -> dict:
    """The VisDial v0.9 document: string lists (sorted) and dialogs of indices into them."""
    questions = sorted({r.question for d in dialogs for r in d.rounds})
    answers = sorted({a for d in dialogs for r in d.rounds for a in r.options})
    q_id = {q: i for i, q in enumerate(questions)}
    a_id = {a: i for i, a in enumerate(answers)}
    out = [
        {
            "image_id": d.scene.image_id,
            "caption": d.caption,
            "dialog": [
                {
                    "question": q_id[r.question],
                    "answer": a_id[r.answer],
                    "gt_index": r.gt_index,
                    "answer_options": [a_id[a] for a in r.options],
                }
                for r in d.rounds
            ],
        }
        for d in dialogs
    ]
    return {
        "version": "0.9",
        "split": split,
        "data": {"questions": questions, "answers": answers, "dialogs": out},
    }


def meanings_doc(splits: dict[str, list[DemoDialog]]) -> dict:
    """``meanings.json``: what every answer string means and what every round asks and is.

    ``answers``: ``{answer text: meaning}`` for every answer the generator can write (meanings
    as JSON lists: ``["colour", "red"]``, ``["yn", true]``, ``["position", [0, 2]]``,
    ``["generic"]``). ``rounds``: ``{split: {image_id: [[kind, truth], ...]}}`` per dialog in
    round order, ``truth`` = the question's meaning in the image (the human answer may still be
    generic). ``pipeline.evaluation.meaning`` grades generated answers with it. A split with
    several dialogs per image (train with ``demo.dialogs_per_image`` > 1) is left out: a round is
    named by (image id, round), and only the test role is graded.
    """
    splits = {
        split: dialogs
        for split, dialogs in splits.items()
        if len({d.scene.image_id for d in dialogs}) == len(dialogs)
    }
    return {
        "version": 1,
        "answers": {text: list(_jsonable(m)) for text, m in ANSWER_MEANING.items()},
        "rounds": {
            split: {
                str(d.scene.image_id): [[r.kind, _jsonable(r.truth)] for r in d.rounds]
                for d in dialogs
            }
            for split, dialogs in splits.items()
        },
    }


def _jsonable(value):
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _check_out_dir(out_dir: Path) -> None:
    # The whole directory is replaced: refuse to wipe one that is not a previous demo dataset.
    if out_dir.exists() and (
        not out_dir.is_dir()
        or (any(out_dir.iterdir()) and not (out_dir / JSON_NAME.format(split="train")).exists())
    ):
        raise InputError(
            f"{out_dir}: exists and is not a demo dataset directory; refusing to replace it"
        )


def generate_demo(
    out_dir: str | os.PathLike,
    cfg: DemoConfig,
    progress: Callable[[Iterable[Scene]], Iterable[Scene]] = lambda items: items,
) -> dict:
    """Write ``visdial_0.9_{train,val}.json`` and ``images/`` into ``out_dir`` (replacing it).

    ``progress`` wraps the loop over scenes while images are drawn (e.g. ``rich.progress.track``).
    Returns summary counts per split.
    """
    check_demo_config(cfg)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    splits = {split: build_split(cfg, split) for split in SPLITS}
    summary: dict = {}
    with atomic_path(out_dir, is_dir=True) as tmp:
        for split, dialogs in splits.items():
            doc = to_visdial(dialogs, split)
            (tmp / JSON_NAME.format(split=split)).write_text(json.dumps(doc) + "\n")
            answers = [r.answer for d in dialogs for r in d.rounds]
            summary[split] = {
                "dialogs": len(dialogs),
                "questions": len(doc["data"]["questions"]),
                "answers": len(doc["data"]["answers"]),
                "generic_share": round(
                    sum(ANSWER_MEANING[a] == GENERIC for a in answers) / len(answers), 3
                ),
            }
        (tmp / MEANINGS_NAME).write_text(json.dumps(meanings_doc(splits)) + "\n")
        (tmp / IMAGE_DIR).mkdir()
        scenes = list({d.scene.image_id: d.scene for ds in splits.values() for d in ds}.values())
        for scene in progress(scenes):
            image = draw_scene(scene, cfg.image_size)
            image.save(tmp / IMAGE_DIR / (cfg.image_pattern % scene.image_id))
    summary["images"] = len(scenes)
    return summary

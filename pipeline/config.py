"""Frozen dataclasses for the sections of ``params.yaml``, and strict construction from mappings.

One dataclass per section (``data:``, ``demo:``, ``prepare:`` …). ``Params.from_mapping`` rejects
unknown keys and wrong types with an ``InputError`` naming the dotted key, so a typo in
``params.yaml`` (or in ``dvc exp run -S``) fails loudly instead of being ignored. Reading the YAML
file itself is the stages' job (``stages/params.py``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import InputError

ImageNorm = Literal["l2", "zscore", "none"]  # model.image_norm
Precision = Literal["auto", "fp32", "bf16"]  # every stage's precision (pipeline.runtime.autocast)
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
ROLES = ("train", "val", "test", "challenge")  # the roles of the data, the groups of dialogs.h5


@dataclass(frozen=True)
class DataConfig:
    """The VisDial JSON files of each role (paper §5: 82k train, 1k val held out from train, the
    reported test split) and the folder that holds them. ``""`` means "not given".

    ``train``: what G and D are fitted on. ``val``: model selection (best epoch, early
    stopping); ``""`` holds out ``prepare.val_from_train`` train dialogs instead. ``test``: the
    reported split (VisDial v0.9 val, or v1.0 val with ``dense``). ``challenge``: the v1.0
    test-std file (no answers) for the evaluation server's ranks. ``meanings``: the demo's
    answer key (``pipeline.data.meanings``), which grades generated answers by meaning; real
    VisDial has none (``""``). ``dir`` holds every one of
    these files: it is the ``prepare`` stage's DVC dep (the stage, given ``--inside``, refuses a
    file outside it).
    """

    dir: str = "data/demo"
    train: str = "data/demo/visdial_0.9_train.json"
    val: str = ""
    test: str = "data/demo/visdial_0.9_val.json"
    challenge: str = ""
    dense: str = ""
    meanings: str = ""  # the demo's answer key (params.yaml: data/demo/meanings.json)
    images: str = "data/demo/images"


@dataclass(frozen=True)
class DemoConfig:
    """The procedurally generated demo dataset (``pipeline/demo/``).

    ``dirs`` lists where the ``demo_data`` DVC stage writes the demo (one stage per entry);
    set it to ``[]`` when running on real VisDial so the demo is not generated at all.
    """

    dirs: tuple[str, ...] = ("data/demo",)
    seed: int = 0
    train_dialogs: int = 480
    val_dialogs: int = 120
    dialogs_per_image: int = 1  # train only: dialogs written about each train image
    image_size: int = 224
    image_pattern: str = "demo_%012d.png"


@dataclass(frozen=True)
class MaxLen:
    """Truncation lengths in tokens (paper §5 "Pre-processing": 24/16/8)."""

    caption: int = 24
    question: int = 16
    answer: int = 8


@dataclass(frozen=True)
class PrepareConfig:
    """Tokenization and vocabulary (``pipeline/prepare.py``)."""

    min_count: int = 5
    max_len: MaxLen = field(default_factory=MaxLen)
    val_from_train: int = 1000  # with data.val "": train dialogs held out as val (paper: 1k)
    seed: int = 0  # which train dialogs are held out
    allow_overlap: bool = False  # refuse an image id in two roles unless true


def _demo_patterns() -> dict[str, str]:
    return {role: "demo_%012d.png" for role in ROLES}


@dataclass(frozen=True)
class FeaturesConfig:
    """VGG-19 pool5 image features (``pipeline/features/``; paper §5 "Training Details").

    ``patterns`` maps a split to a printf-style file name relative to the image directory.
    """

    image_size: int = 224
    weights: str = "random"  # imagenet | dirac | random | path to a state-dict file
    seed: int = 0  # for weights: random
    dtype: Literal["float16", "float32"] = "float16"  # stored dtype
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    batch_size: int = 16
    num_workers: int = 2
    on_error: Literal["fail", "skip"] = "fail"  # bad images: fail | skip (zeros, valid = 0)
    patterns: dict[str, str] = field(default_factory=_demo_patterns)


@dataclass(frozen=True)
class ModelConfig:
    """Sizes shared by every model (paper §5: 300-d word embeddings, 512-d single-layer LSTMs)."""

    embed_dim: int = 300
    hidden: int = 512
    dropout: float = 0.5
    # What the region embedding sees of each image region's 512-d pool5 vector: l2 = scaled to
    # unit L2 norm (the VisDial anchors' img_norm); zscore = each channel standardised with the
    # train split's mean and std (kept in the checkpoint); none = as stored (docs/features.md).
    image_norm: ImageNorm = "l2"


@dataclass(frozen=True)
class LoopConfig:
    """What every training loop reads (``pipeline/training/loop.py``): Adam, batches, seeds, device.

    ``beta1`` 0.8 follows the authors' code; ``batch_size`` is the global batch (``torchrun``).
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 4e-4
    beta1: float = 0.8
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: Precision = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    workers: int = 0
    val_dialogs: int = 0  # first N val dialogs ranked after every epoch (0 = all)


@dataclass(frozen=True)
class PretrainConfig(LoopConfig):
    """Pretraining of G (``train_g``) or D (``train_d``): Adam, lr 4e-4 (paper §5).

    ``variants`` are names like ``hciae-g-mle`` or ``hciae-d-np-att``
    (``pipeline/models/variants.py``). ``lr_decay_every`` 0 keeps the lr constant. ``epochs`` is
    the most a variant trains; ``patience`` > 0 stops it earlier, that many epochs after its best
    val epoch (best.pt is that epoch either way).
    """

    variants: tuple[str, ...] = ()
    lr_decay: float = 0.5
    lr_decay_every: int = 0
    patience: int = 0  # stop after this many epochs without a better val MRR (0 = never)


@dataclass(frozen=True)
class TrainGConfig(PretrainConfig):
    """``train_g``: generative variants, trained by MLE."""

    variants: tuple[str, ...] = ("lf-g", "hrea-g", "mn-g", "hciae-g-mle")


@dataclass(frozen=True)
class TrainDConfig(PretrainConfig):
    """``train_d``: N-pair / cross-entropy over ``negatives`` sampled incorrect options."""

    variants: tuple[str, ...] = (
        "lf-d", "hrea-d", "mn-d", "hciae-d-mle", "hciae-d-np", "hciae-d-np-att",
    )  # fmt: skip
    epochs: int = 30
    negatives: int = 99  # incorrect options per round in the loss (99 = the whole list)
    l2: float = 1e-3  # N-pair L2 regulariser on the embeddings (Eq. 4, "following [43]")


@dataclass(frozen=True)
class ChatConfig:
    """``visdial chat`` / ``visdial answer``: which trained G answers, and how it decodes.

    ``model``: ``g-dis`` | ``g-mle`` (``models/hciae-g-{dis,mle}/best.pt``), any variant name
    (``models/<name>/best.pt``) or a checkpoint path. Not a DVC stage: not in ``dvc.yaml``.
    """

    model: str = "g-dis"
    vocab: str = "data/prepared/vocab.json"
    decode: Literal["greedy", "sample", "beam"] = "greedy"
    temperature: float = 1.0  # decode: sample
    beam_size: int = 5  # decode: beam
    seed: int = 0  # decode: sample
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 32  # dialogs per batch in ``visdial answer``


@dataclass(frozen=True)
class ServeConfig:
    """``visdial serve``: the web demo (G-MLE and G-DIS side by side, D's scores). Not a DVC
    stage. ``host`` 127.0.0.1 serves this machine only; anything else exposes the models to
    the network (docs/serve.md)."""

    g_mle: str = "hciae-g-mle"  # models/<name>/best.pt (or a path.pt)
    g_dis: str = "hciae-g-dis"
    discriminator: str = "hciae-d-np-att"  # scores each answer; "" = no scores
    vocab: str = "data/prepared/vocab.json"
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 10.0  # larger uploads get 413
    max_question_words: int = 40  # longer questions get 422 (G reads the first 16 tokens)
    max_caption_words: int = 60
    image_cache: int = 64  # uploaded images whose features are kept (by content hash)
    examples: int = 12  # test images offered on the page (data.test, data.images)
    device: str = "auto"


def _all_models() -> tuple[str, ...]:
    return (
        "lf-g", "hrea-g", "mn-g", "hciae-g-mle", "hciae-g-dis",
        "lf-d", "hrea-d", "mn-d", "hciae-d-mle", "hciae-d-np", "hciae-d-np-att",
        "hciae-g-gan1", "hciae-d-gan1", "hciae-g-gan2", "hciae-d-gan2",
    )  # fmt: skip


@dataclass(frozen=True)
class EvaluateConfig:
    """``evaluate``: rank the 100 options of every val round with ``models/<name>/best.pt``.

    ``models`` are the rows of Tables 1, 2 and 4 (one DVC stage each). ``precision`` bf16 runs
    bf16 autocast (faster on GPUs, but bf16 scores can tie); ``auto`` is bf16 on CUDA only.
    """

    models: tuple[str, ...] = field(default_factory=_all_models)
    batch_size: int = 16  # dialogs per batch (performance only)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = "fp32"  # fp32 | bf16 | auto
    shuffled_images: bool = True  # also score with another dialog's image (doubles the cost)


def _adversarial_rows() -> dict[str, list[str]]:
    return {
        "HCIAE-D-NP-ATT / HCIAE-G-DIS": ["hciae-d-np-att", "hciae-g-dis"],
        "HCIAE-GAN1": ["hciae-d-gan1", "hciae-g-gan1"],
        "HCIAE-GAN2": ["hciae-d-gan2", "hciae-g-gan2"],
    }


@dataclass(frozen=True)
class ReportConfig:
    """``report``: the tables, Table-3 style samples, diversity of G-MLE vs G-DIS, plots.

    ``adversarial`` maps a Table 4 row to its [D variant, G variant]. ``generic`` answers count
    as "safe" in the diversity table (compared after tokenization, whole answer only).
    """

    generative: tuple[str, ...] = ("lf-g", "hrea-g", "mn-g", "hciae-g-mle", "hciae-g-dis")
    discriminative: tuple[str, ...] = (
        "lf-d", "hrea-d", "mn-d", "hciae-d-mle", "hciae-d-np", "hciae-d-np-att",
    )  # fmt: skip
    adversarial: dict[str, list[str]] = field(default_factory=_adversarial_rows)
    g_mle: str = "hciae-g-mle"
    g_dis: str = "hciae-g-dis"
    discriminator: str = "hciae-d-np-att"  # the gallery's D (top-5 options)
    samples: int = 8  # test rounds shown Table-3 style; test dialogs in the gallery
    beam_size: int = 5  # the gallery's beam-search answers
    noises: int = 3  # G-DIS samples per shown round (seeds seed+1 .. seed+noises)
    seed: int = 0
    generic: tuple[str, ...] = (
        "i can't tell", "can't tell", "not sure", "i'm not sure", "i don't know", "no", "yes",
    )  # fmt: skip
    batch_size: int = 32  # dialogs per batch (performance only)
    device: str = "auto"


def _claims() -> tuple[tuple[str, str], ...]:
    return (
        ("hciae-g-dis", "hciae-g-mle"),  # Table 1: knowledge transfer helps G
        ("hciae-g-mle", "lf-g"), ("hciae-g-mle", "hrea-g"), ("hciae-g-mle", "mn-g"),  # encoder
        ("hciae-d-np-att", "hciae-d-np"),  # Table 2: self-attentive answer encoder
        ("hciae-d-np", "hciae-d-mle"),  # N-pair loss
        ("hciae-d-mle", "lf-d"), ("hciae-d-mle", "hrea-d"), ("hciae-d-mle", "mn-d"),  # encoder
        ("hciae-d-np-att", "hciae-g-dis"),  # D beats G
        ("hciae-g-dis", "hciae-g-gan1"), ("hciae-g-dis", "hciae-g-gan2"),  # Table 4
        ("hciae-d-np-att", "hciae-d-gan1"), ("hciae-d-np-att", "hciae-d-gan2"),
    )  # fmt: skip


@dataclass(frozen=True)
class CompareConfig:
    """``compare``: paired differences A − B on the test rounds (``pipeline.evaluation.compare``).

    ``pairs`` are [A, B] variant names (default: the paper's claims); each gets Δ, a percentile
    bootstrap CI over dialogs at ``level`` and a sign-flip permutation p-value, ``resamples``
    draws each, seeded by ``seed``.
    """

    pairs: tuple[tuple[str, ...], ...] = field(default_factory=_claims)
    resamples: int = 10_000
    seed: int = 0
    level: float = 0.95


@dataclass(frozen=True)
class TransferConfig(LoopConfig):
    """Knowledge transfer D -> G (``transfer``; paper §4.3, §5 and Table 4).

    G-DIS: G (from HCIAE-G-MLE) minimises L_G (Eq. 5) + ``alpha`` * L_MLE against the frozen D
    (HCIAE-D-NP-ATT), sampling with straight-through Gumbel-softmax at temperature ``tau``.
    ``gan_modes`` (Table 4) also update D, alternating with G on every batch: ``gan1`` by
    L_D = -L_G, ``gan2`` by D's N-pair loss with G's sample as one more negative beside
    ``negatives`` incorrect options (``l2``: Eq. 4's regulariser). One Adam (``lr``) moves both.
    """

    epochs: int = 5
    gan_modes: tuple[str, ...] = ("gan1", "gan2")
    alpha: float = 0.5  # weight of L_MLE (paper §5: 0.5)
    tau: float = 0.5  # Gumbel-softmax temperature (paper §4.3: 0.5)
    negatives: int = 31  # gan2: incorrect options per round beside G's sample
    l2: float = 1e-3  # gan2: N-pair L2 regulariser on the embeddings


@dataclass(frozen=True)
class Params:
    """All of ``params.yaml``. Sections default to their dataclass defaults when absent."""

    data: DataConfig = field(default_factory=DataConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train_g: TrainGConfig = field(default_factory=TrainGConfig)
    train_d: TrainDConfig = field(default_factory=TrainDConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any] | None, source: str = "params.yaml") -> Params:
        return from_mapping(cls, mapping or {}, source, "")


def _check_type(value: Any, annotation: Any, key: str, source: str, default: Any = None) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key, source, default)
            except InputError:
                continue
        raise InputError(f"{source}: key '{key}' has value {value!r} of the wrong type")
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value in choices:
            return value
        raise InputError(
            f"{source}: key '{key}' has value {value!r}, expected one of {', '.join(choices)}"
        )
    if annotation is type(None):
        if value is None:
            return None
    elif origin in (list, tuple):
        if isinstance(value, list | tuple):
            (item,) = typing.get_args(annotation)[:1] or (Any,)
            return tuple(_check_type(v, item, f"{key}[{i}]", source) for i, v in enumerate(value))
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif dataclasses.is_dataclass(annotation):
        if isinstance(value, dict):
            return from_mapping(annotation, value, source, key + ".", default)
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    else:
        return value
    expected = getattr(annotation, "__name__", annotation)
    raise InputError(f"{source}: key '{key}' has value {value!r}, expected {expected}")


INF = float("inf")
# Allowed ranges [low, high] of numeric params by field name, checked wherever the field is
# given (params.yaml, dvc exp run -S, command-line options). Field names mean the same in every
# section (``epochs`` of train_g, train_d and transfer alike).
RANGES: dict[str, tuple[float, float]] = {
    # data sizes and seeds
    "train_dialogs": (1, INF), "val_dialogs": (0, INF), "val_from_train": (0, INF),
    "min_count": (1, INF), "caption": (1, INF), "question": (1, INF), "answer": (1, INF),
    "image_size": (32, INF), "seed": (0, 2**32 - 1),
    # performance
    "batch_size": (1, INF), "num_workers": (0, INF), "workers": (0, INF),
    # models
    "embed_dim": (1, INF), "hidden": (1, INF), "dropout": (0.0, 0.99),
    # training
    "epochs": (1, INF), "lr": (1e-12, 10.0), "beta1": (0.0, 0.999999), "lr_decay": (1e-6, 1.0),
    "lr_decay_every": (0, INF), "patience": (0, INF), "grad_clip": (0.0, INF),
    "negatives": (1, 99), "l2": (0.0, INF), "alpha": (0.0, INF), "tau": (1e-6, INF),
    # report, chat, compare
    "samples": (0, INF), "noises": (0, INF), "temperature": (1e-6, INF), "beam_size": (1, INF),
    "resamples": (100, INF), "level": (0.5, 0.999),
    # serve
    "port": (0, 65535), "max_upload_mb": (0.001, INF), "max_question_words": (1, INF),
    "max_caption_words": (1, INF), "image_cache": (0, INF), "examples": (0, INF),
}  # fmt: skip


def _check_range(name: str, value: Any, key: str, source: str) -> None:
    if name not in RANGES or isinstance(value, bool) or not isinstance(value, int | float):
        return
    low, high = RANGES[name]
    if not low <= value <= high:
        shown = f">= {low:g}" if high == INF else f"in [{low:g}, {high:g}]"
        raise InputError(f"{source}: key '{key}' = {value!r} must be {shown}")


def from_mapping(
    cls: type, mapping: dict[str, Any], source: str, prefix: str = "", base: Any = None
) -> Any:
    """Build dataclass ``cls`` from ``mapping``; unknown keys and bad types raise ``InputError``.

    Keys absent from ``mapping`` keep their value in ``base`` (default: ``cls()``), so a section's
    own defaults (e.g. ``train_d``'s variant list) survive a partial section.
    """
    base = cls() if base is None else base
    if not isinstance(mapping, dict):
        raise InputError(f"{source}: '{prefix.rstrip('.') or '<top>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise InputError(
            f"{source}: unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    kwargs = {
        k: _check_type(v, hints[k], prefix + k, source, getattr(base, k))
        for k, v in mapping.items()
    }
    for k, v in kwargs.items():
        _check_range(k, v, prefix + k, source)
    return dataclasses.replace(base, **kwargs)


# --------------------------------------------------------------------------- paths
# What ``check_params`` can know about the data before any stage runs: DVC deletes a stage's
# outputs before its command starts, so a path that ``prepare`` or ``features`` would refuse
# must fail in ``check_params`` instead, with every output still in place.

DATA_FILES = ("train", "val", "test", "challenge", "dense", "meanings")  # inside data.dir


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (both resolved; a folder is not inside itself)."""
    return Path(folder).resolve() in Path(path).resolve().parents


def _generated_by(path: str, generated: dict[str, tuple[str, ...]]) -> str | None:
    """The folder of ``generated`` that ``path`` is, or lies inside."""
    for folder in generated:
        if Path(path).resolve() == Path(folder).resolve() or is_inside(path, folder):
            return folder
    return None


def _check_exists(
    key: str, path: str, folder: bool, generated: dict[str, tuple[str, ...]], source: str
) -> None:
    writer = _generated_by(path, generated)
    if writer is not None:  # written by an earlier stage: may not exist yet (a fresh clone)
        rel = Path(path).resolve().relative_to(Path(writer).resolve()).as_posix()
        if rel not in generated[writer]:
            raise InputError(
                f"{source}: data.{key}: {path} is inside {writer}, which the demo_data stage "
                f"writes and replaces as a whole (demo.dirs), and it writes no {rel} (only "
                f"{', '.join(generated[writer])}): keep your own files in a data.dir of their own"
            )
        return
    where, kind = Path(path), "folder" if folder else "file"
    if not where.exists():
        raise InputError(f"{source}: data.{key}: {path}: {kind} not found")
    if where.is_dir() != folder:
        raise InputError(f"{source}: data.{key}: {path}: not a {kind}")


def check_data_paths(
    data: DataConfig,
    generated: dict[str, tuple[str, ...]] | None = None,
    source: str = "params.yaml",
) -> None:
    """Raise ``InputError`` for a ``data.*`` path that ``prepare`` or ``features`` would refuse.

    Every file of ``DATA_FILES`` that is given must lie inside ``data.dir`` (the ``prepare``
    stage's DVC dep) and exist; ``train``, ``test`` and ``images`` must be given, and ``images``
    must be a folder. ``generated`` maps each folder an earlier stage writes (``demo.dirs``) to
    the names written there: a path inside one need not exist yet (on a fresh clone the
    ``demo_data`` stage runs after ``check_params``) but must be one of those names.
    """
    generated = generated or {}
    needed = {"dir": "the folder of the data files", "train": "the file G and D are fitted on",
              "test": "the reported split", "images": "the image folder"}  # fmt: skip
    for key, what in needed.items():
        if not getattr(data, key):
            raise InputError(f"{source}: data.{key} is empty: it must name {what}")
    if _generated_by(data.dir, generated) is None and not any(
        is_inside(folder, data.dir) for folder in generated
    ):
        _check_exists("dir", data.dir, True, {}, source)
    for key in DATA_FILES:
        path = getattr(data, key)
        if not path:
            continue
        if not is_inside(path, data.dir):
            raise InputError(
                f"{source}: data.{key}: {path} is not inside data.dir ({data.dir}), the folder "
                "dvc.yaml tracks for prepare: move it there or set data.dir"
            )
        _check_exists(key, path, False, generated, source)
    _check_exists("images", data.images, True, generated, source)


def check_pattern(key: str, pattern: object) -> None:
    """Raise ``InputError`` unless ``pattern`` is a printf pattern with one integer field."""
    try:
        ok = isinstance(pattern, str) and pattern % 1 != pattern % 2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"{key}: {pattern!r}: expected a printf pattern with one integer field, e.g. "
            "train2014/COCO_train2014_%012d.jpg"
        )


def check_features_config(cfg: FeaturesConfig) -> None:
    """Reject impossible ``features.*`` settings with the key that is wrong.

    ``dtype``, ``precision`` and ``on_error`` are ``Literal`` types, checked when
    ``params.yaml`` is read; this checks what a type cannot say.
    """
    if cfg.image_size < 32 or cfg.image_size % 32:
        raise InputError(f"features.image_size: {cfg.image_size}: must be a multiple of 32")
    if cfg.batch_size < 1 or cfg.num_workers < 0:
        raise InputError("features.batch_size must be >= 1 and features.num_workers >= 0")
    for split, pattern in cfg.patterns.items():
        check_pattern(f"features.patterns.{split}", pattern)


def check_pattern_splits(features: FeaturesConfig, data: DataConfig) -> None:
    """A ``features.patterns`` entry for each split ``prepare`` writes (train, val, test;
    challenge when ``data.challenge`` is given)."""
    splits = ["train", "val", "test"] + (["challenge"] if data.challenge else [])
    missing = [s for s in splits if s not in features.patterns]
    if missing:
        raise InputError(f"features.patterns: no file-name pattern for split '{missing[0]}'")

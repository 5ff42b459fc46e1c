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
from typing import Any

from pipeline.errors import InputError


@dataclass(frozen=True)
class DataConfig:
    """Where the VisDial JSON files live. Empty ``test``/``dense`` mean "not given"."""

    train: str = "data/demo/visdial_0.9_train.json"
    val: str = "data/demo/visdial_0.9_val.json"
    test: str = ""
    dense: str = ""
    images: str = "data/demo/images"


@dataclass(frozen=True)
class DemoConfig:
    """The procedurally generated demo dataset (``pipeline/demo.py``).

    ``dirs`` lists where the ``demo_data`` DVC stage writes the demo (one stage per entry);
    set it to ``[]`` when running on real VisDial so the demo is not generated at all.
    """

    dirs: tuple[str, ...] = ("data/demo",)
    seed: int = 0
    train_dialogs: int = 480
    val_dialogs: int = 120
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


def _demo_patterns() -> dict[str, str]:
    return {"train": "demo_%012d.png", "val": "demo_%012d.png", "test": "demo_%012d.png"}


@dataclass(frozen=True)
class FeaturesConfig:
    """VGG-19 pool5 image features (``pipeline/features.py``; paper §5 "Training Details").

    ``patterns`` maps a split to a printf-style file name relative to the image directory.
    """

    image_size: int = 224
    weights: str = "random"  # imagenet | random | path to a state-dict file
    seed: int = 0  # for weights: random
    dtype: str = "float16"  # stored dtype: float16 | float32
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "bf16"  # CUDA autocast: bf16 | fp16 | fp32 (the CPU always runs fp32)
    batch_size: int = 16
    num_workers: int = 2
    on_error: str = "fail"  # fail | skip
    patterns: dict[str, str] = field(default_factory=_demo_patterns)


@dataclass(frozen=True)
class Params:
    """All of ``params.yaml``. Sections default to their dataclass defaults when absent."""

    data: DataConfig = field(default_factory=DataConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any] | None, source: str = "params.yaml") -> Params:
        return from_mapping(cls, mapping or {}, source, "")


def _check_type(value: Any, annotation: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key, source)
            except InputError:
                continue
        raise InputError(f"{source}: key '{key}' has value {value!r} of the wrong type")
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
            return from_mapping(annotation, value, source, key + ".")
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
    raise InputError(
        f"{source}: key '{key}' has value {value!r}, expected {getattr(annotation, '__name__', annotation)}"
    )


def from_mapping(cls: type, mapping: dict[str, Any], source: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``mapping``; unknown keys and bad types raise ``InputError``."""
    if not isinstance(mapping, dict):
        raise InputError(f"{source}: '{prefix.rstrip('.') or '<top>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - names)
    if unknown:
        raise InputError(
            f"{source}: unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _check_type(v, hints[k], prefix + k, source) for k, v in mapping.items()}
    return cls(**kwargs)

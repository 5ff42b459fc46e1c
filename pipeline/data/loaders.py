"""Loading prepared data for the models: a split's dialogs with their features, and batches.

* :func:`load_data` — ``dialogs.h5`` split + ``<features>/<split>.h5`` -> ``DialogDataset``;
* :func:`epoch_loaders` — a training loop's shuffled train batches (per rank) and its
  validation batches;
* :func:`dialog_chunks` — consecutive dialogs in file order (evaluation, the report);
* :func:`splits_of` — the split groups of ``dialogs.h5``;
* :func:`data_digest` — what identifies the prepared data and features a run reads (the
  training loop keys its resume state by it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.atomic import sha256_file
from pipeline.config import LoopConfig
from pipeline.data.batch import DialogBatch
from pipeline.data.dataset import DialogDataset, batches, load_split
from pipeline.data.feature_reader import FeatureReader
from pipeline.errors import InputError
from pipeline.runtime import Dist


def load_data(prepared: Path, features: Path, split: str) -> DialogDataset:
    """The dialogs of ``split`` with their image features (read by row)."""
    return DialogDataset(
        load_split(prepared / "dialogs.h5", split), FeatureReader(features / f"{split}.h5")
    )


def epoch_loaders(
    train: DialogDataset, val: DialogDataset, cfg: LoopConfig, dist: Dist, device: torch.device
) -> tuple[Callable[[int], DataLoader], Callable[[], DataLoader]]:
    """(epoch -> this rank's shuffled train batches, () -> batches of the validation dialogs).

    ``cfg.batch_size`` is the global batch (split among ranks, so it must divide by their
    number); validation uses the first ``cfg.val_dialogs`` val dialogs (all when 0), in order,
    on one process.
    """
    if cfg.batch_size % dist.world:
        raise InputError(
            f"batch_size {cfg.batch_size} does not divide among {dist.world} processes"
        )
    pin = device.type == "cuda"
    val_subset = val.head(cfg.val_dialogs) if cfg.val_dialogs else val

    def train_batches(epoch: int) -> DataLoader:
        return batches(
            train, cfg.batch_size // dist.world, shuffle=True, seed=cfg.seed, epoch=epoch,
            rank=dist.rank, world=dist.world, workers=cfg.workers, pin_memory=pin,
        )  # fmt: skip

    def val_batches() -> DataLoader:
        return batches(val_subset, cfg.batch_size, shuffle=False, workers=cfg.workers)

    return train_batches, val_batches


def dialog_chunks(
    dataset: DialogDataset, batch_size: int
) -> Iterator[tuple[np.ndarray, DialogBatch]]:
    """Consecutive dialogs in file order: (dialog indices (B,), their batch)."""
    for start in range(0, len(dataset), batch_size):
        idx = np.arange(start, min(start + batch_size, len(dataset)))
        yield idx, dataset[idx]



def splits_of(dialogs_h5: str | Path) -> list[str]:
    """The split groups of ``dialogs.h5``."""
    path = Path(dialogs_h5)
    if not path.is_file():
        raise InputError(f"{path}: no such file (run the prepare stage)")
    with h5py.File(path, "r") as h5:
        return list(h5)


def data_digest(prepared: Path, features: Path, splits: tuple[str, ...]) -> dict[str, str]:
    """Identify the inputs of a training run, so that changed data never resumes stale state.

    ``dialogs.h5`` and ``vocab.json`` by content (SHA-256: small, seconds even for VisDial);
    the features files (GBs for VisDial) by size and modification time, which change whenever
    the features stage rewrites them.
    """
    out = {name: sha256_file(prepared / name)[:16] for name in ("dialogs.h5", "vocab.json")}
    for split in splits:
        path = features / f"{split}.h5"
        if path.is_file():
            stat = path.stat()
            out[f"features/{split}.h5"] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return out

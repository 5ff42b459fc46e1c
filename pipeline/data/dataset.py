"""Batches of dialogs for training and evaluation: ``dialogs.h5`` + image features -> DialogBatch.

The token arrays of one split are loaded into memory once (≈0.5 GB for VisDial v0.9 train); image
features are read by row from the features HDF5 (``FeatureReader``), never loaded whole unless
asked. Items are whole batches: ``__getitem__`` takes a list of dialog indices and gathers every
array with one fancy-index, so there is no per-dialog collate in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from pipeline.data.batch import DialogBatch, batch_from_arrays
from pipeline.errors import InputError
from pipeline.data.feature_reader import FeatureReader

_ARRAYS = (
    "image_id", "caption", "caption_len", "question", "question_len", "answer", "answer_len",
    "num_rounds", "options", "gt_index", "answer_pool", "answer_pool_len",
)  # fmt: skip


def load_split(dialogs_h5: str | Path, split: str) -> dict[str, np.ndarray]:
    """All arrays of one split of ``dialogs.h5`` (read-only open)."""
    path = Path(dialogs_h5)
    if not path.is_file():
        raise InputError(f"{path}: no such file (run the prepare stage)")
    with h5py.File(path, "r") as h5:
        if split not in h5:
            raise InputError(f"{path}: has no '{split}' split (has: {', '.join(h5)})")
        group = h5[split]
        missing = [name for name in _ARRAYS if name not in group]
        if missing:
            raise InputError(f"{path}: split '{split}' lacks dataset '{missing[0]}'")
        return {name: group[name][()] for name in group}


class DialogDataset(Dataset):
    """Dialog ``i`` of a split with its image features; items are batches (index lists)."""

    def __init__(self, arrays: dict[str, np.ndarray], features: FeatureReader):
        self.arrays = arrays
        rows = []
        for image_id in arrays["image_id"].tolist():
            try:
                rows.append(features.row_of(image_id))
            except KeyError:
                raise InputError(f"{features.path}: no features for image {image_id}") from None
        self.feature_rows = np.asarray(rows, np.int64)
        self.features = features

    def __len__(self) -> int:
        return len(self.arrays["image_id"])

    def head(self, n: int) -> DialogDataset:
        """The first ``n`` dialogs (e.g. a quick validation subset)."""
        subset = DialogDataset.__new__(DialogDataset)
        pool = ("answer_pool", "answer_pool_len")
        subset.arrays = {k: v if k in pool else v[:n] for k, v in self.arrays.items()}
        subset.feature_rows, subset.features = self.feature_rows[:n], self.features
        return subset

    def with_images_of(self, order: np.ndarray) -> DialogDataset:
        """The same dialogs, dialog i shown the image of dialog ``order[i]`` (an ablation: does
        a model's score depend on the image?)."""
        other = DialogDataset.__new__(DialogDataset)
        other.arrays, other.features = self.arrays, self.features
        other.feature_rows = self.feature_rows[np.asarray(order, np.int64)]
        return other

    def __getitem__(self, index: Sequence[int]) -> DialogBatch:
        idx = np.sort(np.asarray(index, np.int64))
        arrays = self.arrays
        feats = self.features[self.feature_rows[idx]]  # (B, 512, 7, 7)
        image = (
            torch.from_numpy(feats.astype(np.float32)).flatten(2).transpose(1, 2)
        )  # (B, 49, 512)
        options = arrays["options"][idx]  # (B, R, O) indices into the answer pool
        return batch_from_arrays(
            arrays, idx, image.contiguous(),
            options=arrays["answer_pool"][options],  # (B, R, O, La)
            options_len=arrays["answer_pool_len"][options],  # (B, R, O)
        )  # fmt: skip


def batches(
    dataset: DialogDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world: int = 1,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader of DialogBatch for this rank; ``batch_size`` is per rank.

    Shuffling is a permutation seeded by ``(seed, epoch)`` — the same for every rank and for any
    number of ranks — of which rank r takes every ``world``-th dialog; so K ranks with batch
    B/K see, step by step, exactly the dialogs one process with batch B sees.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    sampler.set_epoch(epoch)
    return DataLoader(
        dataset,
        sampler=BatchSampler(sampler, batch_size, drop_last=False),
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
    )

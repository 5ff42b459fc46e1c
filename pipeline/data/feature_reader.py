"""Reading the features stage's output: rows of ``<split>.h5`` by dialog (the training side).

The layout (``image_id (N,)``, ``features (N, 512, S/32, S/32)``, ``valid (N,)``) is written by
``pipeline.features.extract`` and documented in ``docs/features.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from pipeline.errors import InputError


class FeatureReader:
    """Rows of ``<split>.h5`` as numpy arrays; opened read-only, lazily, once per process.

    Picklable (the h5py handle is dropped and reopened), so DataLoader workers can share it.
    ``in_memory=True`` loads the whole ``features`` dataset on first use; ``None`` (default)
    does so when it holds at most ``IN_MEMORY_MAX_BYTES`` (the demo's 24 MB: h5py's fancy
    indexing cost 0.9 s per demo epoch, a quarter of D's), and reads rows from disk otherwise
    (VisDial v0.9 train: 4.2 GB in float16).
    """

    IN_MEMORY_MAX_BYTES = 1 << 30

    def __init__(self, path: str | os.PathLike, in_memory: bool | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such features file (run the features stage)")
        with h5py.File(self.path, "r") as f:
            if "features" not in f or "image_id" not in f:
                raise InputError(f"{self.path}: not a features file (needs image_id, features)")
            self.image_ids = f["image_id"][()]
            self.valid = f["valid"][()] if "valid" in f else np.ones(len(self.image_ids), bool)
            self.attrs = dict(f.attrs)
            self.shape = f["features"].shape[1:]
            nbytes = f["features"].size * f["features"].dtype.itemsize
        self.in_memory = nbytes <= self.IN_MEMORY_MAX_BYTES if in_memory is None else in_memory
        self._row = {}
        for row, image_id in enumerate(self.image_ids.tolist()):
            self._row.setdefault(image_id, row)
        self._file = self._data = None

    def __len__(self) -> int:
        return len(self.image_ids)

    def row_of(self, image_id: int) -> int:
        """The (first) row holding ``image_id``; ``KeyError`` when absent."""
        return self._row[int(image_id)]

    def _dataset(self):
        if self._data is None:
            self._file = h5py.File(self.path, "r")
            self._data = self._file["features"]
            if self.in_memory:
                self._data = self._data[()]
                self._file.close()
                self._file = None
        return self._data

    def __getitem__(self, rows) -> np.ndarray:
        data = self._dataset()
        if np.isscalar(rows):
            return np.asarray(data[int(rows) % len(self)])  # (512, s, s)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1) % max(len(self), 1)
        if len(rows) == 0:
            return np.empty((0, *self.shape), dtype=data.dtype)
        if self.in_memory:
            return data[rows]  # (n, 512, s, s)
        wanted, inverse = np.unique(rows, return_inverse=True)  # h5py wants increasing rows
        return data[wanted][inverse.reshape(-1)]  # (n, 512, s, s)

    def channel_stats(self, rows, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation (512,) over every region of ``rows``.

        Each distinct row counts once; read ``chunk`` rows at a time (float64 sums), so it never
        holds more than a chunk of a large file.
        """
        rows = np.unique(np.asarray(rows, np.int64))
        total = np.zeros(self.shape[0]), np.zeros(self.shape[0])
        for start in range(0, len(rows), chunk):
            x = self[rows[start : start + chunk]].astype(np.float64)  # (n, C, s, s)
            x = x.transpose(1, 0, 2, 3).reshape(self.shape[0], -1)  # (C, n*s*s)
            total[0][:] += x.sum(1)
            total[1][:] += (x * x).sum(1)
        count = max(len(rows) * int(np.prod(self.shape[1:])), 1)
        mean = total[0] / count
        std = np.sqrt(np.maximum(total[1] / count - mean * mean, 0.0))
        return mean.astype(np.float32), std.astype(np.float32)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._data = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        if not self.in_memory:
            state["_data"] = None
        return state

    def __enter__(self) -> FeatureReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The features stage: VGG-19 pool5 of every image of every split, resumable and distributed.

``extract_features`` turns the image ids of ``image_ids.h5`` (or ``dialogs.h5``: same layout) and
the image files into ``<out>/<split>.h5``:
``image_id (N,)``, ``features (N, 512, S/32, S/32)`` and ``valid (N,)``, rows in the order of
``dialogs.h5`` (a duplicated id is computed once and stored at each of its rows).

Work in progress lives in a resume directory outside the output (DVC deletes the output before a
rerun; the stage passes ``.resume/features``): per split and rank, a raw feature file and a status
byte per image, written in that order, so a run killed at any point (even ``kill -9``) resumes
with the images not yet done. The final HDF5 files are assembled from it and renamed into place
only when every split is complete; the resume directory is removed after that. Under
``torchrun`` the unique images are sharded round-robin across ranks and rank 0 assembles the one
file per split. The backbone is ``pipeline.features.backbone``; reading the output is
``pipeline.data.feature_reader``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pipeline.atomic import atomic_path, write_json
from pipeline.config import ROLES, FeaturesConfig, check_features_config
from pipeline.errors import InputError
from pipeline.features.backbone import BACKBONE, CHANNELS, Backbone, load_backbone
from pipeline.features.images import IMAGENET_MEAN, IMAGENET_STD, load_uint8, normalize
from pipeline.progress import progress_bar
from pipeline.runtime import Dist, autocast, effective_precision, init_distributed

TODO, DONE, BAD = 0, 1, 2  # per-image status bytes in the partial files


# --------------------------------------------------------------------------- inputs


def read_image_ids(dialogs_h5: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{split: image_id (N,) int64}`` for each split group of ``dialogs.h5``."""
    path = Path(dialogs_h5)
    if not path.is_file():
        raise InputError(f"{path}: no such file (run the prepare stage first)")
    out = {}
    with h5py.File(path, "r") as f:
        for split in ROLES:
            if split in f:
                if "image_id" not in f[split]:
                    raise InputError(f"{path}: group '{split}' has no 'image_id' dataset")
                out[split] = np.asarray(f[split]["image_id"][()], dtype=np.int64).reshape(-1)
    if not out:
        raise InputError(f"{path}: no split group ({', '.join(ROLES)})")
    return out


class _ImageFiles(Dataset):
    """(local row, uint8 image or zeros, error message or "") for DataLoader workers."""

    def __init__(self, rows: np.ndarray, paths: list[str], size: int):
        self.rows, self.paths, self.size = rows, paths, size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, str]:
        try:
            return int(self.rows[i]), load_uint8(self.paths[i], self.size), ""
        except FileNotFoundError:
            err = "missing"
        except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, … for bad files
            err = f"{type(exc).__name__}: {exc}"
        return int(self.rows[i]), torch.zeros(3, self.size, self.size, dtype=torch.uint8), err


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding is single-threaded; leave the cores to the network


# --------------------------------------------------------------------------- partial state


class _Shard:
    """One rank's share of one split: raw features + status bytes under ``.partial/<split>/``."""

    def __init__(self, root: Path, ranks: Dist, ids: np.ndarray, shape: tuple, dtype: str):
        self.ids, self.shape, self.dtype = ids, shape, np.dtype(dtype)
        stem = root / f"r{ranks.rank}of{ranks.world}"
        self.meta_path, self.errors_path = (
            stem.with_suffix(".json"),
            stem.with_suffix(".errors.json"),
        )
        self.feat_path, self.status_path = stem.with_suffix(".feat"), stem.with_suffix(".status")

    @staticmethod
    def paths(root: Path, rank: int, world: int) -> tuple[Path, Path, Path]:
        stem = root / f"r{rank}of{world}"
        return (
            stem.with_suffix(".feat"),
            stem.with_suffix(".status"),
            stem.with_suffix(".errors.json"),
        )

    def open(self, fingerprint: dict) -> None:
        """Reuse the files when their fingerprint matches, else start this shard afresh."""
        n = len(self.ids)
        fingerprint = json.loads(json.dumps(fingerprint))  # tuples → lists, as read back
        meta = json.loads(self.meta_path.read_text()) if self.meta_path.exists() else None
        fresh = meta != fingerprint or not (self.feat_path.exists() and self.status_path.exists())
        if fresh:
            self.meta_path.unlink(missing_ok=True)
            for path, nbytes in ((self.feat_path, n * self.row_bytes), (self.status_path, n)):
                with open(path, "wb") as f:
                    f.truncate(nbytes)  # sparse zeros: TODO everywhere
            write_json(self.meta_path, fingerprint)
        self.feat = self._map(self.feat_path, self.dtype, (n, *self.shape), "r+")
        self.status = self._map(self.status_path, np.uint8, (n,), "r+")

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @staticmethod
    def _map(path: Path, dtype, shape: tuple, mode: str) -> np.ndarray:
        if shape[0] == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode=mode, shape=shape)

    def commit(self, rows: np.ndarray, feats: np.ndarray, bad_rows: np.ndarray) -> None:
        """Features first, then their status: a kill in between only loses this batch."""
        if len(rows):
            self.feat[rows] = feats
            self.feat.flush()
        self.status[rows] = DONE
        self.status[bad_rows] = BAD
        self.status.flush()


# --------------------------------------------------------------------------- extraction


@torch.inference_mode()
def _launch(model: nn.Module, images: torch.Tensor, device: torch.device, cfg: FeaturesConfig):
    """Start the forward of one uint8 batch; returns a host tensor (and an event on CUDA)."""
    x = normalize(images.to(device, non_blocking=True))  # (B, 3, S, S)
    x = x.contiguous(memory_format=torch.channels_last)  # CPU too: 1.14x for VGG-19 here
    if device.type != "cuda":
        with autocast(device, cfg.precision):
            return model(x).float().contiguous().numpy(), None  # (B, 512, S/32, S/32)
    with autocast(device, cfg.precision):
        y = model(x)
    y = y.to(getattr(torch, cfg.dtype)).contiguous()  # (B, 512, S/32, S/32)
    host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
    host.copy_(y, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


def _finish(host, event) -> np.ndarray:
    if event is not None:
        event.synchronize()
        return host.numpy()
    return host


def _extract_shard(shard, paths, model, device, cfg, progress: bool, label) -> dict[str, str]:
    """Run every not-yet-done image of ``shard``; returns {path: error} for the bad ones."""
    todo = np.flatnonzero(shard.status != DONE)
    dataset = _ImageFiles(todo, [paths[i] for i in todo], cfg.image_size)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if cfg.num_workers else None,
        prefetch_factor=4 if cfg.num_workers else None,
    )
    errors: dict[str, str] = {}
    pending = None
    with progress_bar(len(todo), label, "img", enabled=progress) as advance:
        for rows, images, errs in loader:
            rows = rows.numpy()
            ok = np.array([e == "" for e in errs], dtype=bool)
            for r, e in zip(rows[~ok], np.asarray(errs)[~ok], strict=True):
                errors[paths[r]] = e
            if not ok.all():
                images = images[torch.from_numpy(ok)]  # (b, 3, S, S): the decodable ones
            launched = _launch(model, images, device, cfg) if ok.any() else None
            if pending is not None:
                _commit_batch(shard, *pending)
                advance(len(pending[0]) + len(pending[2]))
            pending = (rows[ok], launched, rows[~ok])
        if pending is not None:
            _commit_batch(shard, *pending)
            advance(len(pending[0]) + len(pending[2]))
    return errors


def _commit_batch(shard: _Shard, rows: np.ndarray, launched, bad_rows: np.ndarray) -> None:
    feats = _finish(*launched).astype(shard.dtype, copy=False) if launched else None
    shard.commit(rows, feats, bad_rows)


def _assemble(
    out_path: Path, root: Path, ids: np.ndarray, uniq: np.ndarray, world: int, shape, attrs: dict
) -> np.ndarray:
    """Write ``out_path`` from the ranks' partial files, one block of rows at a time."""
    n_shard = [len(uniq[r::world]) for r in range(world)]
    feats, stats = [], []
    for r in range(world):
        feat_path, status_path, _ = _Shard.paths(root, r, world)
        feats.append(_Shard._map(feat_path, attrs["dtype"], (n_shard[r], *shape), "r"))
        stats.append(_Shard._map(status_path, np.uint8, (n_shard[r],), "r"))
    position = {int(i): u for u, i in enumerate(uniq)}
    u_of_row = np.fromiter((position[int(i)] for i in ids), dtype=np.int64, count=len(ids))
    valid = np.empty(len(ids), dtype=bool)
    block = 256
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("image_id", data=ids)
        ds = f.create_dataset(
            "features", shape=(len(ids), *shape), dtype=attrs["dtype"], chunks=(1, *shape)
        )
        for a in range(0, len(ids), block):
            u = u_of_row[a : a + block]
            rank, local = u % world, u // world
            out = np.zeros((len(u), *shape), dtype=attrs["dtype"])  # (b, 512, s, s)
            ok = np.zeros(len(u), dtype=bool)
            for r in np.unique(rank):
                sel = rank == r
                ok[sel] = stats[r][local[sel]] == DONE
                out[sel] = np.where(ok[sel, None, None, None], feats[r][local[sel]], 0)
            ds[a : a + len(u)] = out
            valid[a : a + len(u)] = ok
        f.create_dataset("valid", data=valid)
        for key, value in attrs.items():
            f.attrs[key] = value
    return valid


def _partial_dir(out_dir: Path) -> Path:
    """``data/features`` → ``data/features.partial``: outside the output, which DVC deletes."""
    out_dir = out_dir.absolute()
    return out_dir.parent / f"{out_dir.name}.partial"


def _attrs(backbone: Backbone, cfg: FeaturesConfig, device: torch.device) -> dict:
    """What the output records about how it was made (also the resume fingerprint's core)."""
    return {
        "backbone": BACKBONE,
        "weights": backbone.weights,
        "weights_sha256": backbone.sha256,
        "seed": cfg.seed if backbone.weights in ("random", "dirac") else -1,
        "image_size": cfg.image_size,
        "resize": "PIL bilinear to image_size x image_size, no crop",
        "normalization_mean": IMAGENET_MEAN,
        "normalization_std": IMAGENET_STD,
        "dtype": cfg.dtype,
        "device": device.type,
        "precision": effective_precision(device, cfg.precision),
    }


def _bad_images(partial: Path, splits, ranks: Dist, on_error: str) -> dict[str, str]:
    """Every rank's bad files; with ``on_error: fail`` an ``InputError`` listing them."""
    bad: dict[str, str] = {}
    for split in splits:
        for r in range(ranks.world):
            bad.update(json.loads(_Shard.paths(partial / split, r, ranks.world)[2].read_text()))
    if bad and on_error == "fail":
        listing = partial / "bad_images.txt"
        if ranks.rank == 0:
            listing.write_text("".join(f"{p}: {e}\n" for p, e in sorted(bad.items())))
        shown = "; ".join(f"{p} ({e})" for p, e in sorted(bad.items())[:20])
        more = f"; … {len(bad) - 20} more" if len(bad) > 20 else ""
        raise InputError(
            f"{len(bad)} unreadable image(s), full list in {listing}: {shown}{more}"
            " — fix them and rerun (finished work is kept), or set features.on_error: skip"
        )
    return bad


def extract_features(
    dialogs_h5: str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: FeaturesConfig,
    *,
    partial_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Extract every split of ``dialogs_h5`` into ``out_dir/<split>.h5``; returns a summary.

    Bad images: with ``on_error: fail`` everything else is extracted and kept in the partial
    files, then an ``InputError`` lists the bad files; with ``skip`` they become zero rows with
    ``valid = False``.
    """
    check_features_config(cfg)
    ids_by_split = read_image_ids(dialogs_h5)
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    if not image_dir.is_dir():
        raise InputError(f"{image_dir}: image directory not found")
    missing = [s for s in ids_by_split if s not in cfg.patterns]
    if missing:
        raise InputError(f"features.patterns: no file-name pattern for split '{missing[0]}'")
    partial = Path(partial_dir) if partial_dir else _partial_dir(out_dir)
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    # Ranks wait for each other only at the end of the extraction: allow a long wait.
    ranks, device = init_distributed(cfg.device, "features.device", timedelta(hours=12))
    try:
        backbone = load_backbone(cfg.weights, cfg.seed)
        model = backbone.module.to(device).to(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        shape = (CHANNELS, cfg.image_size // 32, cfg.image_size // 32)
        plans = {}
        for split, ids in ids_by_split.items():
            _, first = np.unique(ids, return_index=True)
            uniq = ids[np.sort(first)]  # unique ids in order of first appearance
            attrs = {**_attrs(backbone, cfg, device), "split": split}
            attrs |= {"image_dir": str(image_dir), "pattern": cfg.patterns[split]}
            mine = uniq[ranks.rank :: ranks.world]
            (partial / split).mkdir(parents=True, exist_ok=True)
            shard = _Shard(partial / split, ranks, mine, shape, cfg.dtype)
            ids_sha = hashlib.sha256(mine.tobytes()).hexdigest()
            shard.open({**attrs, "ids_sha256": ids_sha, "rank": ranks.rank, "world": ranks.world})
            paths = [str(image_dir / (cfg.patterns[split] % int(i))) for i in mine]
            bar = progress and ranks.rank == 0
            errors = _extract_shard(shard, paths, model, device, cfg, bar, f"features {split}")
            write_json(shard.errors_path, errors)
            plans[split] = (ids, uniq, attrs)
        ranks.barrier()
        bad = _bad_images(partial, plans, ranks, cfg.on_error)
        summary = {}
        if ranks.rank == 0:
            for split, (ids, uniq, attrs) in plans.items():
                out = out_dir / f"{split}.h5"
                valid = _assemble(out, partial / split, ids, uniq, ranks.world, shape, attrs)
                summary[split] = {"images": len(ids), "unique": len(uniq)}
                summary[split]["invalid"] = int((~valid).sum())
            shutil.rmtree(partial, ignore_errors=True)
            if bad:
                print(
                    f"warning: {len(bad)} unreadable image(s) written as zeros with valid=0"
                    f" (features.on_error: skip), e.g. {min(bad)}",
                    file=sys.stderr,
                )
        ranks.barrier()
        return summary
    finally:
        if ranks.world > 1 and owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

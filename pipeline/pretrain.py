"""Pretraining one model variant (G by MLE, D by N-pair or cross-entropy) on prepared data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pipeline.config import LoopConfig, ModelConfig, TrainConfig, TrainDConfig
from pipeline.dataset import DialogDataset, batches, load_split
from pipeline.errors import InputError
from pipeline.evaluate import retrieval_metrics
from pipeline.features import FeatureReader
from pipeline.models import build_model, model_meta
from pipeline.runtime import Dist, init_distributed, seed_everything
from pipeline.train import RunFiles, Trainer
from pipeline.vocab import Vocabulary


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


def pretrain(
    variant: str,
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    prepared: Path,
    features: Path,
    files: RunFiles,
    progress: bool = True,
) -> list[dict]:
    """Train ``variant`` for ``cfg.epochs`` epochs (resuming if possible); returns the history.

    Runs as one process or under ``torchrun`` (DistributedDataParallel, ``cfg.batch_size`` is
    the global batch and must divide by the number of processes).
    """
    dist, device = init_distributed(cfg.device)
    vocab = Vocabulary.load(prepared / "vocab.json")
    train, val = load_data(prepared, features, "train"), load_data(prepared, features, "val")
    seed_everything(cfg.seed)  # the initial weights
    d_only = {"negatives": cfg.negatives, "l2": cfg.l2} if isinstance(cfg, TrainDConfig) else {}
    model = build_model(variant, len(vocab), model_cfg, **d_only)
    train_batches, val_batches = epoch_loaders(train, val, cfg, dist, device)

    def validate(model) -> dict:
        return retrieval_metrics(model, val_batches(), device, cfg.precision)

    trainer = Trainer(
        model=model,
        cfg=cfg,
        files=files,
        meta=model_meta(model, len(vocab)),
        train_batches=train_batches,
        validate=validate,
        device=device,
        dist=dist,
        progress=progress,
    )
    return trainer.run()

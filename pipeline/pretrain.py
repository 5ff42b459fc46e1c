"""Pretraining one model variant (G by MLE, D by N-pair or cross-entropy) on prepared data."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ModelConfig, TrainConfig, TrainDConfig
from pipeline.dataset import DialogDataset, batches, load_split
from pipeline.errors import InputError
from pipeline.evaluate import retrieval_metrics
from pipeline.features import FeatureReader
from pipeline.models import build_model, model_meta
from pipeline.runtime import init_distributed, seed_everything
from pipeline.train import RunFiles, Trainer
from pipeline.vocab import Vocabulary


def load_data(prepared: Path, features: Path, split: str) -> DialogDataset:
    """The dialogs of ``split`` with their image features (read by row)."""
    return DialogDataset(
        load_split(prepared / "dialogs.h5", split), FeatureReader(features / f"{split}.h5")
    )


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
    if cfg.batch_size % dist.world:
        raise InputError(
            f"batch_size {cfg.batch_size} does not divide among {dist.world} processes"
        )
    vocab = Vocabulary.load(prepared / "vocab.json")
    train, val = load_data(prepared, features, "train"), load_data(prepared, features, "val")
    seed_everything(cfg.seed)  # the initial weights
    d_only = {"negatives": cfg.negatives, "l2": cfg.l2} if isinstance(cfg, TrainDConfig) else {}
    model = build_model(variant, len(vocab), model_cfg, **d_only)
    pin = device.type == "cuda"

    def train_batches(epoch: int):
        return batches(
            train, cfg.batch_size // dist.world, shuffle=True, seed=cfg.seed, epoch=epoch,
            rank=dist.rank, world=dist.world, workers=cfg.workers, pin_memory=pin,
        )  # fmt: skip

    val_subset = val.head(cfg.val_dialogs) if cfg.val_dialogs else val

    def validate(model) -> dict:
        loader = batches(val_subset, cfg.batch_size, shuffle=False, workers=cfg.workers)
        return retrieval_metrics(model, loader, device)

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

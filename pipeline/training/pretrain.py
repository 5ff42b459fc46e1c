"""Pretraining one model variant (G by MLE, D by N-pair or cross-entropy) on prepared data."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ModelConfig, PretrainConfig, TrainDConfig
from pipeline.data.loaders import data_digest, epoch_loaders, load_data
from pipeline.data.vocab import Vocabulary
from pipeline.evaluation.evaluate import retrieval_metrics
from pipeline.models.variants import build_model, model_meta
from pipeline.runtime import init_distributed, seed_everything
from pipeline.training.loop import RunFiles, Trainer


def pretrain(
    variant: str,
    cfg: PretrainConfig,
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
    if model_cfg.image_norm == "zscore":  # the train split's channel statistics (a resume
        # restores the same values with the weights)
        model.encoder.image_embed.set_stats(*train.features.channel_stats(train.feature_rows))
    train_batches, val_batches = epoch_loaders(train, val, cfg, dist, device)

    def validate(model) -> dict:
        return retrieval_metrics(model, val_batches(), device, cfg.precision)

    trainer = Trainer(
        model=model,
        cfg=cfg,
        files=files,
        meta=model_meta(model, len(vocab)),
        inputs=data_digest(prepared, features, ("train", "val")),
        train_batches=train_batches,
        validate=validate,
        device=device,
        dist=dist,
        progress=progress,
    )
    return trainer.run()

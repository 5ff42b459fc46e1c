"""`visdial train-g`: pretrain a generative model (encoder + LSTM decoder) by MLE."""

from __future__ import annotations

from pathlib import Path

from stages import train_common as common
from stages.common import user_errors


@user_errors
def main(
    variant: common.Variant,
    prepared: common.Prepared = Path("data/prepared"),
    features: common.Features = Path("data/features"),
) -> None:
    """Pretrain G (paper §5: 20 epochs of MLE) for one variant: lf-g, hrea-g, mn-g, hciae-g-mle.

    Settings come from params.yaml (model.*, train_g.*). Writes models/VARIANT/{best,last}.pt,
    resumable state in checkpoints/VARIANT/ and the dvclive log + curves.png in live/VARIANT/.
    Runs under `torchrun --nproc_per_node=K` with DistributedDataParallel too.
    """
    common.run("train_g", variant, prepared, features)

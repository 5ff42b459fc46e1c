"""`visdial train-d`: pretrain a discriminative model (encoder + answer encoder)."""

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
    """Pretrain D (paper §5: 30 epochs) for one variant, e.g. lf-d, hciae-d-np-att.

    Settings come from params.yaml (model.*, train_d.*). Writes models/VARIANT/{best,last}.pt,
    resumable state in checkpoints/VARIANT/ and the dvclive log + curves.png in live/VARIANT/.
    Runs under `torchrun --nproc_per_node=K` with DistributedDataParallel too.
    """
    common.run("train_d", variant, prepared, features)

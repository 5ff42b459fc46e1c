"""`visdial transfer`: knowledge transfer D -> G (G-DIS) or an adversarial variant (GAN1/GAN2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.transfer import TransferFiles, run_transfer, transfer_variants
from stages.common import user_errors
from stages.params import load_params


@user_errors
def main(
    mode: Annotated[str, typer.Option(help="dis (G-DIS) | gan1 | gan2 (Table 4).")] = "dis",
    g: Annotated[Path, typer.Option(help="Pretrained G.")] = Path("models/hciae-g-mle/best.pt"),
    d: Annotated[Path, typer.Option(help="Pretrained D.")] = Path("models/hciae-d-np-att/best.pt"),
    prepared: Annotated[Path, typer.Option(help="Output of prepare.")] = Path("data/prepared"),
    features: Annotated[Path, typer.Option(help="Output of features.")] = Path("data/features"),
) -> None:
    """Train G against D with L_G (Eq. 5) + alpha * L_MLE (paper §4.3, §5; Table 4 for GAN modes).

    Settings come from params.yaml (transfer.*). Writes models/hciae-g-MODE/{best,last}.pt (and
    models/hciae-d-MODE/ for gan1/gan2), resumable state in checkpoints/hciae-g-MODE/ and the
    dvclive log + curves.png in live/hciae-g-MODE/.
    """
    params = load_params()
    g_name, d_name = transfer_variants(mode)
    files = TransferFiles(
        ckpt_dir=Path("checkpoints") / g_name,
        live_dir=Path("live") / g_name,
        g_out=Path("models") / g_name,
        d_out=Path("models") / d_name if d_name else None,
    )
    history = run_transfer(mode, params.transfer, g, d, prepared, features, files)
    if history:
        last = history[-1]
        summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "epoch")
        typer.echo(f"{g_name}: epoch {last['epoch']}: {summary}; wrote {files.g_out}")

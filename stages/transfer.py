"""`visdial transfer`: knowledge transfer D -> G (G-DIS) or an adversarial variant (GAN1/GAN2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.training.transfer import TransferFiles, run_transfer
from stages.common import opt, run_command, user_errors
from stages.params import load_params


@user_errors
def main(
    g: Annotated[Path, opt("Pretrained G, e.g. models/hciae-g-mle/best.pt.")],
    d: Annotated[Path, opt("Pretrained D, e.g. models/hciae-d-np-att/best.pt.")],
    prepared: Annotated[Path, opt("Output of prepare.")],
    features: Annotated[Path, opt("Output of features.")],
    out_g: Annotated[Path, opt("Where the trained G goes; its name is the variant's.")],
    live: Annotated[Path, opt("The log (metrics.json) + curves.png.")],
    resume: Annotated[Path, opt("Resumable state (not an output).")],
    mode: Annotated[str, opt("dis (G-DIS) | gan1 | gan2 (Table 4).")] = "dis",
    out_d: Annotated[Path | None, opt("Where the trained D goes (gan1 / gan2 only).")] = None,
) -> None:
    """Train G against D with L_G (Eq. 5) + alpha * L_MLE (paper §4.3, §5; Table 4 for GAN modes).

    Settings come from params.yaml (transfer.*). Writes OUT_G/{best,last}.pt (and OUT_D/ for
    gan1/gan2), the log (metrics.json) + curves.png in LIVE and resumable state in RESUME.
    """
    params = load_params()
    files = TransferFiles(resume_dir=resume, live_dir=live, g_out=out_g, d_out=out_d)
    history = run_transfer(mode, params.transfer, g, d, prepared, features, files)
    if history:
        last = history[-1]
        summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "epoch")
        typer.echo(f"{out_g.name}: epoch {last['epoch']}: {summary}; wrote {out_g}")


if __name__ == "__main__":
    run_command(main)

"""PNG plots readable offline (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: list[dict], path: str | Path, title: str = "") -> None:
    """Training loss and validation metrics per epoch, one panel each, to ``path`` (PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [k for k in (history[0] if history else {}) if k != "epoch"]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(3.2 * max(len(keys), 1), 2.8))
    axes = axes if len(keys) > 1 else [axes]
    epochs = [row["epoch"] for row in history]
    for ax, key in zip(axes, keys, strict=False):
        ax.plot(epochs, [row[key] for row in history], marker="o", ms=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

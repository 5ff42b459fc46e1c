"""PNG plots readable offline (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plotted(key: str) -> bool:
    """Whether a logged key is drawn as a curve: every metric but ``epoch`` and the counts
    (``val_count``, constant across epochs)."""
    return key != "epoch" and "count" not in key


def plot_curves(history: list[dict], path: str | Path, title: str = "") -> None:
    """Training loss and validation metrics per epoch, one panel each, to ``path`` (PNG).

    A row may lack keys (epoch 0 of knowledge transfer has no training loss): each panel plots
    the epochs that have its key.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [k for row in history for k in row if plotted(k)]
    keys = list(dict.fromkeys(keys))
    fig, axes = _grid(len(keys), 3, (3.4, 2.6))
    for ax, key in zip(axes, keys, strict=False):
        rows = [row for row in history if key in row]
        ax.plot([row["epoch"] for row in rows], [row[key] for row in rows], marker="o", ms=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    _save(fig, path, title)


def _grid(n: int, max_cols: int, cell: tuple[float, float]):
    """A figure with n panels in rows of at most ``max_cols``; unused panels hidden."""
    cols = min(max(n, 1), max_cols)
    rows = -(-max(n, 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _save(fig, path: Path, title: str) -> None:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


def plot_metric_bars(
    rows: dict[str, dict], path: str | Path, keys: tuple[str, ...], title: str = ""
) -> None:
    """One panel per metric key, one bar per row (e.g. variant -> metrics), to ``path`` (PNG).

    Rows lacking a key get no bar; values are printed on the bars.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(rows)
    fig, axes = _grid(len(keys), 2, (max(2.6, 0.42 * len(names) + 1.2), 3.4))
    for ax, key in zip(axes, keys, strict=True):
        values = [rows[n].get(key, float("nan")) for n in names]
        bars = ax.bar(range(len(names)), values, color=[_color(n) for n in names])
        ax.bar_label(bars, fmt="%.3g", fontsize=6, rotation=90, padding=2)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.25)
    _save(fig, path, title)


def _color(name: str) -> str:
    """Generative rows blue, discriminative orange, anything else grey."""
    parts = name.lower().split("-")
    return {"g": "tab:blue", "d": "tab:orange"}.get(parts[1] if len(parts) > 1 else "", "tab:grey")


def plot_attention(image, maps: dict, path: str | Path, title: str = "") -> None:
    """``image`` (H, W, 3) uint8 with each attention map of ``maps`` (title -> K = s*s weights)
    laid over it, one panel each, to ``path`` (PNG). The s x s grid covers the whole image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = _grid(max(len(maps), 1) + 1, 3, (3.2, 3.4))
    panels = [("image", None), *maps.items()]
    for ax, (name, weights) in zip(axes, panels, strict=False):
        ax.set_axis_off()
        if image is None:
            continue
        ax.imshow(image)
        if weights is not None:
            side = int(round(len(weights) ** 0.5))
            grid = np.asarray(weights, dtype=float).reshape(side, side)  # (s, s)
            h, w = image.shape[:2]
            ax.imshow(grid, cmap="jet", alpha=0.45, extent=(0, w, h, 0), interpolation="bilinear",
                      vmin=0.0, vmax=float(grid.max()))  # fmt: skip
        ax.set_title(name, fontsize=8, wrap=True)
    _save(fig, path, title)

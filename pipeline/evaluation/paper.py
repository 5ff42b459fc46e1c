"""The paper's numbers (Lu et al. 2017, VisDial v0.9 test): Tables 1, 2 and 4, by variant name.

R@k are fractions (the paper prints percent), as in ``metrics/<variant>.json``. A claim's
direction is the sign of the paper's difference; for ``mean_rank`` lower is better.
"""

from __future__ import annotations

_KEYS = ("mrr", "r@1", "r@5", "r@10", "mean_rank")


def _row(mrr: float, r1: float, r5: float, r10: float, mean: float) -> dict[str, float]:
    return dict(zip(_KEYS, (mrr, r1 / 100, r5 / 100, r10 / 100, mean), strict=True))


PAPER: dict[str, dict[str, float]] = {
    # Table 1: generative
    "lf-g": _row(0.5199, 41.83, 61.78, 67.59, 17.07),
    "hrea-g": _row(0.5242, 42.28, 62.33, 68.17, 16.79),
    "mn-g": _row(0.5259, 42.29, 62.85, 68.88, 17.06),
    "hciae-g-mle": _row(0.5386, 44.06, 63.55, 69.24, 16.01),
    "hciae-g-dis": _row(0.5467, 44.35, 65.28, 71.55, 14.23),
    # Table 2: discriminative
    "lf-d": _row(0.5807, 43.82, 74.68, 84.07, 5.78),
    "hrea-d": _row(0.5868, 44.82, 74.81, 84.36, 5.66),
    "mn-d": _row(0.5965, 45.55, 76.22, 85.37, 5.46),
    "hciae-d-mle": _row(0.6140, 47.73, 77.50, 86.35, 5.15),
    "hciae-d-np": _row(0.6182, 47.98, 78.35, 87.16, 4.92),
    "hciae-d-np-att": _row(0.6222, 48.48, 78.75, 87.59, 4.81),
    # Table 4: adversarial training (D and G of each run)
    "hciae-d-gan1": _row(0.2177, 8.82, 32.97, 52.14, 18.53),
    "hciae-g-gan1": _row(0.5298, 43.12, 62.74, 68.58, 16.25),
    "hciae-d-gan2": _row(0.6050, 46.20, 77.92, 87.20, 4.97),
    "hciae-g-gan2": _row(0.5459, 44.33, 65.05, 71.40, 14.34),
}

LOWER_IS_BETTER = frozenset({"mean_rank"})


def paper_delta(a: str, b: str, metric: str) -> float | None:
    """The paper's A − B on ``metric``, or None when the paper has no number for A or B."""
    if a not in PAPER or b not in PAPER or metric not in PAPER[a]:
        return None
    return PAPER[a][metric] - PAPER[b][metric]

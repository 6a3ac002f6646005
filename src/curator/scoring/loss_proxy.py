"""``loss_proxy`` (HIGHER = HARDER): a weighted mean of difficulty proxies mapped to hardness in [0, 1].

See :class:`curator.scoring.params.LossProxyParams` for the mapping. Vectorised over the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def hardness(values: np.ndarray, easy: float, hard: float) -> np.ndarray:
    """Map ``values`` linearly so ``easy`` -> 0 and ``hard`` -> 1, clipped to [0, 1]; NaN stays NaN."""
    return np.clip((np.asarray(values, dtype=np.float64) - easy) / (hard - easy), 0.0, 1.0)


def combine(columns: Mapping[str, np.ndarray], weights: Mapping[str, float],
            ranges: Mapping[str, list[float]]) -> np.ndarray:
    """Weighted mean of the hardness of every weighted column; NaN components drop out of a row's mean.

    A row whose weighted components are all NaN gets NaN (nothing to say about its difficulty).
    """
    names = sorted(c for c, w in weights.items() if w > 0)
    missing = [c for c in names if c not in columns]
    if missing:
        raise ValueError(f"loss_proxy needs column(s) {', '.join(missing)}; enable the scorers that write them "
                       f"or set their weight to 0 in score.loss_proxy.weights")
    h = np.stack([hardness(columns[c], *ranges[c]) for c in names])
    w = np.array([weights[c] for c in names], dtype=np.float64)[:, None] * np.isfinite(h)
    total = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.nan_to_num(h) * w).sum(0) / total, np.nan)

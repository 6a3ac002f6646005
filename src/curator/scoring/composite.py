"""Composite columns from fixed anchors: ``loss_proxy`` (HIGHER = HARDER) and ``ref_quality`` (HIGHER = CLEANER).

Each component is mapped linearly onto [0, 1] between its two anchors, then the components are averaged
with their weights (see :class:`curator.scoring.params.LossProxyParams`). Vectorised over the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def unit_scale(values: np.ndarray, zero: float, one: float) -> np.ndarray:
    """Map ``values`` linearly so ``zero`` -> 0 and ``one`` -> 1, clipped to [0, 1]; NaN stays NaN."""
    return np.clip((np.asarray(values, dtype=np.float64) - zero) / (one - zero), 0.0, 1.0)


def combine(columns: Mapping[str, np.ndarray], weights: Mapping[str, float],
            ranges: Mapping[str, list[float]]) -> np.ndarray:
    """Weighted mean of every weighted column mapped onto [0, 1] by its ``[to 0, to 1]`` anchors.

    NaN components drop out of a row's mean; a row whose components are all NaN gets NaN.
    """
    names = sorted(c for c, w in weights.items() if w > 0)
    missing = [c for c in names if c not in columns]
    if missing:
        raise ValueError(f"composite score needs column(s) {', '.join(missing)}; enable the scorers that "
                         f"write them or set their weight to 0")
    h = np.stack([unit_scale(columns[c], *ranges[c]) for c in names])
    w = np.array([weights[c] for c in names], dtype=np.float64)[:, None] * np.isfinite(h)
    total = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.nan_to_num(h) * w).sum(0) / total, np.nan)

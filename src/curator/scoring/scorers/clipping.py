"""Reference quality: clipping ratio of the clean target (share of samples stuck at its extreme values).

A clipped signal piles many samples onto its maximum and minimum; an unclipped one reaches them once.
Samples within ``tolerance`` (relative to the peak) of either extreme are counted, minus the two
extremes themselves, over the signal's length. Vectorised over the padded batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns


@dataclass
class ClippingOptions:
    """``score.options.clipping``."""

    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        from curator.config import check_range

        check_range("score.options.clipping.tolerance", self.tolerance, lo=0.0, hi=0.5)


def clip_ratio(x: np.ndarray, lengths: np.ndarray, tolerance: float) -> np.ndarray:
    """Share of each row's valid samples within ``tolerance * peak`` of the row's max or min."""
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    hi = np.where(valid, x, -np.inf).max(1, keepdims=True)
    lo = np.where(valid, x, np.inf).min(1, keepdims=True)
    tol = tolerance * np.maximum(np.abs(hi), np.abs(lo))
    stuck = valid & ((x >= hi - tol) | (x <= lo + tol))
    return np.maximum(stuck.sum(1) - 2, 0) / np.maximum(lengths, 1)


@SCORERS.register("clipping")
class ClippingScorer(Scorer):
    name = "clipping"
    outputs = ("ref_clip_ratio",)
    Options = ClippingOptions

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        x, lengths = batch.padded("clean")
        out = clip_ratio(x, lengths, self.options.tolerance)
        return {"ref_clip_ratio": np.where(batch.speech_free, np.nan, out)}

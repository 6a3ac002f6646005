"""Input difficulty: ESTOI of the noisy input against its clean target (pystoi reference implementation)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curator.metrics import estoi
from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns


@SCORERS.register("estoi")
class EstoiScorer(Scorer):
    name = "estoi"
    outputs = ("in_estoi",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(["in_estoi"])

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        pairs = (batch.noisy, batch.clean, batch.sr, batch.speech_free)
        values = [np.nan if free else estoi(n, c, int(sr)) for n, c, sr, free in zip(*pairs, strict=True)]
        return {"in_estoi": np.array(values, dtype=np.float64)}

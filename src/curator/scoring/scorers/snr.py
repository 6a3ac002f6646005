"""Input difficulty: SNR of the noisy input, treating ``noisy - clean`` as the noise (vectorised)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curator.metrics import snr_batch
from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns, undefined_on_speech_free


@SCORERS.register("snr")
class SnrScorer(Scorer):
    name = "snr"
    outputs = ("in_snr",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(["in_snr"])

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        noisy, _ = batch.padded("noisy")
        clean, _ = batch.padded("clean")
        return {"in_snr": undefined_on_speech_free(batch, snr_batch(noisy, clean))}

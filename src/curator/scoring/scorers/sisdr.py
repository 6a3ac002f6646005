"""Input difficulty: SI-SDR of the noisy input against its clean target (vectorised over the batch)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curator.metrics import si_sdr
from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns, undefined_on_speech_free


@SCORERS.register("sisdr")
class SiSdrScorer(Scorer):
    name = "sisdr"
    outputs = ("in_sisdr",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(["in_sisdr"])

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        noisy, lengths = batch.padded("noisy")
        clean, _ = batch.padded("clean")
        return {"in_sisdr": undefined_on_speech_free(batch, np.atleast_1d(si_sdr(noisy, clean, lengths)))}

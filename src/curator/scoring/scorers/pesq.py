"""Input difficulty: PESQ of the noisy input (narrow-band at 8 kHz, wide-band at 16 kHz otherwise)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curator.metrics import PESQ_NB_SR, PESQ_WB_SR, pesq_score
from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns


@SCORERS.register("pesq")
class PesqScorer(Scorer):
    name = "pesq"
    outputs = ("in_pesq",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(["in_pesq"])

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        # wide-band rows use the batch's cached 16 kHz signals (shared with DNSMOS and VAD)
        wb_noisy, wb_clean = batch.signals("noisy", PESQ_WB_SR), batch.signals("clean", PESQ_WB_SR)
        scores = [
            np.nan if batch.speech_free[i]
            else pesq_score(batch.noisy[i], batch.clean[i], PESQ_NB_SR) if sr == PESQ_NB_SR
            else pesq_score(wb_noisy[i], wb_clean[i], PESQ_WB_SR)
            for i, sr in enumerate(batch.sr)
        ]
        return {"in_pesq": np.array(scores, dtype=np.float64)}

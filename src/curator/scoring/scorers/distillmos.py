"""Reference quality, optional: DistillMOS (a learned MOS distilled from XLS-R SQA; weights ship in distillmos).

``ref_distillmos`` on the 1..5 scale for the clean target at 16 kHz. Each utterance runs alone: the model
crops and pads a whole batch to one shared set of windows, so batching would mix rows. About 20x realtime
per CPU core; ``score.device: cuda`` runs it on the GPU. distillmos imports torchaudio at module level,
hence the torchaudio guard.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from curator.scoring._compat import guard_torchaudio
from curator.scoring.base import SCORERS, AudioBatch, Scorer, ScoringError, float_columns

SR = 16000  # the model's rate


@SCORERS.register("distillmos")
class DistillMosScorer(Scorer):
    name = "distillmos"
    outputs = ("ref_distillmos",)
    gpu_capable = True

    def setup(self) -> None:
        guard_torchaudio()
        try:
            import distillmos
        except ImportError as exc:
            raise ScoringError("the distillmos scorer needs the 'distillmos' package (pip install distillmos)") from exc
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the weights path on load
            self.model = distillmos.ConvTransformerSQAModel().eval().to(self.device)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    @torch.inference_mode()
    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        out = np.full(len(batch), np.nan)
        for i, x in enumerate(batch.signals("clean", SR)):
            if not batch.speech_free[i]:
                out[i] = float(self.model(torch.from_numpy(x)[None].to(self.device)).reshape(()))
        return {"ref_distillmos": out}

    def settings(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return {"package": "distillmos", "version": version("distillmos")}
        except PackageNotFoundError:
            return {"package": "distillmos", "version": None}

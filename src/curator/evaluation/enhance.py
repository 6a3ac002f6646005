"""Run an enhancement checkpoint on single utterances at their own sampling rate, output peak-normalised."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from curator.training.checkpoint import load_model


def peak_normalize(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale ``x`` so that max |x| == ``peak`` (the baseline's inference convention); silence stays silent."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return x if top == 0.0 else (x * (peak / top)).astype(np.float32)


class Enhancer(Protocol):
    """``enhancer(utt_id, noisy, sr) -> enhanced`` of the same length, before peak normalisation.

    ``prepare(rows)`` runs before each chunk of rows, for enhancers that work on many files at once.
    """

    def prepare(self, rows: pd.DataFrame) -> None: ...

    def __call__(self, utt_id: str, noisy: np.ndarray, sr: int) -> np.ndarray: ...


class ModelEnhancer:
    """Enhancer for a checkpoint written by the native trainer (runs the model in this process)."""

    def __init__(self, ckpt: str | os.PathLike[str], device: str) -> None:
        self.model, self.meta = load_model(ckpt)
        self.device = torch.device(device)
        self.model.to(self.device)

    def prepare(self, rows: pd.DataFrame) -> None:
        """Nothing to do: the model runs per utterance."""

    @torch.inference_mode()
    def __call__(self, utt_id: str, noisy: np.ndarray, sr: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))[None].to(self.device)
        return self.model(x, sr)[0].cpu().numpy()

"""Run an enhancement checkpoint on single utterances at their own sampling rate, output peak-normalised; or read
the outputs another program wrote (``inf.scp``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from curator.audio import AudioError, fit_length, load_audio
from curator.training.checkpoint import load_model

PEAK_ULPS = 2
"""How far (in float32 rounding steps) a signal's peak may be from the target and count as normalised already."""


def peak_normalize(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale ``x`` so that max |x| == ``peak`` (the baseline's inference convention); silence stays silent, and a
    signal already at ``peak`` (up to float32 rounding: a normalised file read back) is returned as it is, so that
    scoring written outputs gives the figures of the signals that were written."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0 or abs(top - peak) <= PEAK_ULPS * float(np.finfo(np.float32).eps) * peak:
        return x
    return (x * (peak / top)).astype(np.float32)


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


SCP_NAME = "inf.scp"
"""The list of enhanced files the official inference (and ``curator enhance``) writes beside its ``wav/`` folder."""


class PrecomputedEnhancer:
    """Enhancer that reads the outputs another run wrote: an ``inf.scp`` (``uid path`` a line; relative paths from
    the working directory, as the official scripts read them), or a folder holding one. Each file is decoded at
    the row's rate (resampled when written at another, e.g. the input file's own) and trimmed or zero-padded to
    the input's length, as the official backend's outputs are; a row without a file is skipped and named."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        # imported here: the eval stage itself never reads a list (its dvc.yaml deps cover what it loads)
        from curator.datasets.kaldi import ListError, read_kv

        src = Path(source)
        scp = src / SCP_NAME if src.is_dir() else src
        try:
            self.files = read_kv(scp)
        except ListError as exc:
            raise FileNotFoundError(f"enhanced outputs: {exc} (give an {SCP_NAME}, or the folder that holds "
                                    "one, as `curator enhance` and the official inference write them)") from exc
        self.source = str(scp)

    def prepare(self, rows: pd.DataFrame) -> None:
        """Nothing to do: the files exist."""

    def __call__(self, utt_id: str, noisy: np.ndarray, sr: int) -> np.ndarray:
        if utt_id not in self.files:
            raise AudioError(f"no enhanced output for '{utt_id}' in {self.source}")
        y, _ = load_audio(self.files[utt_id], sr=sr)
        return fit_length(y, len(noisy))

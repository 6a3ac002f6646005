"""Reference quality, optional: NISQA v2 MOS of the clean target (``mos_nisqa``, the spec's column).

Runs the official CNN-SA-AP weights (``weights/nisqa.tar`` of https://github.com/gabrielmittag/NISQA, a
``torch.save`` dict with the training ``args`` and the ``model_state_dict``) through the re-implemented network
of :mod:`curator.scoring.nisqa_model`, loaded with ``strict=True``. No package ships the weights (they are
CC BY-NC-ND), so ``score.options.nisqa.model_path`` must point at a downloaded copy. The clean target is
resampled to the checkpoint's ``ms_sr`` (48 kHz) and predictions are clamped to the 1..5 ACR scale.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from curator.scoring.base import SCORERS, AudioBatch, Scorer, ScoringError, float_columns
from curator.scoring.nisqa_model import NisqaFeatures, NisqaNet, UnsupportedNisqaConfig, predict_mos

CHECKPOINT_KEYS = ("args", "model_state_dict")  # what the official training loop saves and inference needs
HASH_CHUNK = 1 << 20  # bytes read at a time when fingerprinting the weights


@dataclass
class NisqaOptions:
    """``score.options.nisqa``."""

    model_path: str | None = None


def missing_weights(where: str) -> ScoringError:
    """The error raised when no checkpoint is configured or the configured file does not exist."""
    return ScoringError(f"NISQA weights not found at {where}: download nisqa.tar from the NISQA repository "
                        f"(gabrielmittag/NISQA, weights/nisqa.tar) and set score.options.nisqa.model_path")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict, with ``args`` and ``model_state_dict`` checked present.

    Tries the safe ``weights_only`` loader first; the official files also pickle pandas results and a
    datetime, so it falls back to a full unpickle of the file the user configured (trust it as you would
    any model file you downloaded).
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        raise ScoringError(f"'{path}' is not a NISQA checkpoint: expected a torch.save dict with "
                           f"{' and '.join(CHECKPOINT_KEYS)}")
    return ckpt


def build_model(ckpt: dict[str, Any]) -> NisqaNet:
    """The network the checkpoint's ``args`` describe, with its weights loaded strictly, in eval mode."""
    try:
        model = NisqaNet(ckpt["args"])
    except (UnsupportedNisqaConfig, KeyError) as exc:
        raise ScoringError(f"unsupported NISQA checkpoint: {exc}") from exc
    try:
        model.load_state_dict(ckpt["model_state_dict"], strict=True)
    except RuntimeError as exc:
        raise ScoringError(f"NISQA weights do not match the network the checkpoint's args describe: {exc}") from exc
    return model.eval()


@SCORERS.register("nisqa")
class NisqaScorer(Scorer):
    name = "nisqa"
    outputs = ("mos_nisqa",)
    gpu_capable = True
    Options = NisqaOptions

    def _path(self) -> Path:
        if not self.options.model_path:
            raise missing_weights("score.options.nisqa.model_path (null)")
        path = Path(self.options.model_path)
        if not path.is_file():
            raise missing_weights(f"'{path}'")
        return path

    def setup(self) -> None:
        ckpt = load_checkpoint(self._path())
        self.features = NisqaFeatures.from_args(ckpt["args"])
        self.model = build_model(ckpt).to(self.device)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        out = np.full(len(batch), np.nan)
        rows = [i for i in range(len(batch)) if not batch.speech_free[i]]  # a silent target has no quality
        if rows:
            sr = self.features.sr
            signals = batch.signals("clean", sr)
            rates = [sr or int(batch.sr[i]) for i in rows]
            out[rows] = predict_mos(self.model, self.features, [signals[i] for i in rows], rates, self.device)
        return {"mos_nisqa": out}

    def settings(self) -> dict[str, Any]:
        """Options and the weights' SHA-256 (fails early, with the download hint, when they are missing)."""
        digest = hashlib.sha256()
        with self._path().open("rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
        # the checkpoint fixes the architecture and the feature settings, so its hash covers them
        return {"options": dataclasses.asdict(self.options), "model_sha256": digest.hexdigest()}

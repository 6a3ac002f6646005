"""Helpers shared by the datasets tests (a uniquely named module: test folders are not packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params.yaml"
TINY = ["dataset.mini.n_train=8", "dataset.mini.n_dev=4", "dataset.mini.n_test=4",
        "dataset.mini.speakers.train=2", "dataset.mini.speakers.dev=1", "dataset.mini.speakers.test=1",
        "dataset.mini.n_rirs.train=2", "dataset.mini.n_rirs.dev=1", "dataset.mini.n_rirs.test=1",
        "dataset.mini.noises_per_type=1", "dataset.mini.noise_duration_sec=2.0",
        "dataset.mini.duration_sec=[1.0,1.5]", "dataset.mini.speech_free_fraction=0.25",
        "dataset.mini.imperfect_fraction=0.5"]
"""A profile that builds in seconds: 8/4/4 utterances, one clip per noise type."""


def speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic 'voiced' bursts separated by pauses: non-stationary like speech, with silent gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    gate = (np.sin(2 * np.pi * 1.5 * t) > -0.3).astype(float)
    return (0.3 * voiced * gate + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return path

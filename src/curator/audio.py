"""Audio I/O and resampling on soundfile + soxr (no torchaudio: see README, "Dependencies")."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""The seven sampling rates of URGENT 2026."""


class AudioError(ValueError):
    """A file cannot be decoded or holds unusable samples; the message names the file."""


class NonFiniteAudioError(AudioError):
    """A file decodes but holds NaN or infinite samples."""


def load_audio(path: str | os.PathLike[str], sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 (mono by channel mean unless ``mono=False``), optionally resampled to ``sr``."""
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode '{path}': {exc}") from exc
    x = data.mean(axis=1) if mono else data.T
    if x.size and not np.all(np.isfinite(x)):
        raise NonFiniteAudioError(f"'{path}' contains NaN or infinite samples")
    if sr is not None and sr != file_sr:
        x = resample(x, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(x, dtype=np.float32), int(file_sr)


def save_audio(path: str | os.PathLike[str], x: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write audio atomically; the format follows the suffix (wav, flac, ...)."""
    from curator.io import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(x, dtype=np.float32).T, sr, subtype=subtype, format=fmt)


def resample(x: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Band-limited resampling with soxr (works on 1-D or (channels, time) arrays)."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return soxr.resample(x, sr_in, sr_out, quality=quality).astype(np.float32, copy=False)
    return soxr.resample(x.T, sr_in, sr_out, quality=quality).T.astype(np.float32, copy=False)


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(sample rate, frames, channels) from the header only, without decoding."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read header of '{path}': {exc}") from exc
    return int(info.samplerate), int(info.frames), int(info.channels)

"""Audio I/O and resampling on soundfile + soxr (no torchaudio: soundfile decodes every format the datasets use,
soxr resamples)."""

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


CHANNEL_POLICIES = ("first", "mean", "reject")
"""How a multi-channel file becomes mono (``dataset.channel_policy``): its first channel, the mean of its
channels, or rejected at manifest time. Decoders apply what the manifest row records (:func:`row_decoding`)."""
RATE_POLICIES = ("reject", "resample")
"""What the manifest stage does with a file at a rate outside ``dataset.sample_rates``."""
FALLBACK_CHANNEL_POLICY = "mean"
"""Used for a row that records no channel policy (a mono file, or a manifest made by another tool)."""


def to_mono(data: np.ndarray, policy: str) -> np.ndarray:
    """(frames, channels) -> (frames,) by ``policy`` (first | mean); mono input is returned as is."""
    if data.shape[1] == 1:
        return data[:, 0]
    if policy == "first":
        return data[:, 0]
    if policy == "mean":
        return data.mean(axis=1)
    raise ValueError(f"channel policy {policy!r} cannot decode a {data.shape[1]}-channel file; valid: first, mean")


def target_rate(sr: int, supported: tuple[int, ...] | list[int]) -> int:
    """The supported rate a file at ``sr`` is resampled to: the lowest one at or above ``sr`` (nothing of the
    recorded band is thrown away), else the highest (e.g. 11025 -> 16000, 96000 -> 48000)."""
    above = [r for r in supported if r >= sr]
    return int(min(above)) if above else int(max(supported))


def row_decoding(row: object) -> tuple[int | None, str]:
    """(rate to resample to or None, channel policy) recorded in a manifest row's ``custom`` by the manifest
    stage: ``custom.source_sr`` marks a file decoded at ``row.sr`` from another rate, ``custom.channel_policy``
    a multi-channel file. ``row`` is a dict, a pandas row or an :class:`~curator.contract.manifest.Utterance`."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)  # type: ignore[attr-defined]
    custom = get("custom", None)
    if not isinstance(custom, dict):
        custom = {}
    target = int(get("sr")) if custom.get("source_sr") is not None else None  # type: ignore[arg-type]
    return target, str(custom.get("channel_policy") or FALLBACK_CHANNEL_POLICY)


def load_audio(path: str | os.PathLike[str], sr: int | None = None, mono: bool = True,
               channels: str = FALLBACK_CHANNEL_POLICY) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 (mono by ``channels`` policy unless ``mono=False``), optionally resampled to ``sr``."""
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode '{path}': {exc}") from exc
    x = to_mono(data, channels) if mono else data.T
    if x.size and not np.all(np.isfinite(x)):
        raise NonFiniteAudioError(f"'{path}' contains NaN or infinite samples")
    if sr is not None and sr != file_sr:
        x = resample(x, file_sr, sr)
        file_sr = sr
    return np.ascontiguousarray(x, dtype=np.float32), int(file_sr)


SFC_SET_ADD_PEAK_CHUNK = 0x1050
"""libsndfile's command that turns off the PEAK chunk it adds to float WAV/AIFF files by default: the chunk holds
the time of writing, so the same samples written a second later gave other bytes."""
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def save_audio(path: str | os.PathLike[str], x: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write audio atomically; the format follows the suffix (wav, flac, ...). The same samples give the same
    bytes (float files are written without libsndfile's time-stamped PEAK chunk)."""
    from curator.io import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    data = np.asarray(x, dtype=np.float32).T
    with atomic_path(path) as tmp:
        if subtype not in FLOAT_SUBTYPES:
            sf.write(str(tmp), data, sr, subtype=subtype, format=fmt)
            return
        channels = 1 if data.ndim == 1 else data.shape[1]
        with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=channels, subtype=subtype, format=fmt) as f:
            sf._snd.sf_command(f._file, SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)  # no public API for it
            f.write(data)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` trimmed or zero-padded to ``n`` samples (an enhancer's output to its input's length)."""
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


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


OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)
"""Rates the Opus encoder accepts; other rates go through 48 kHz, as ffmpeg's libopus wrapper does."""
_OPUS_WORK_RATE = 48000
_CODEC_SUBTYPES = {("mp3", None): ("MP3", "MPEG_LAYER_III"), ("ogg", "vorbis"): ("OGG", "VORBIS"),
                   ("ogg", "opus"): ("OGG", "OPUS")}


def codec_roundtrip(x: np.ndarray, sr: int, fmt: str, encoder: str | None, compression_level: float) -> np.ndarray:
    """Encode 1-D ``x`` to mp3 / ogg-vorbis / ogg-opus in memory and decode it back, same length as ``x``.

    ``compression_level`` is libsndfile's 0 (best quality, highest bitrate) .. 1 (lowest). Decoders may add
    or drop a few priming samples; the result is trimmed or zero-padded so that sample ``i`` stays sample ``i``.
    """
    import io

    key = (fmt, None if fmt == "mp3" else encoder)
    if key not in _CODEC_SUBTYPES:
        raise ValueError(f"unsupported codec {fmt}/{encoder}; valid: mp3, ogg/vorbis, ogg/opus")
    container, subtype = _CODEC_SUBTYPES[key]
    work_sr = sr if subtype != "OPUS" or sr in OPUS_SAMPLE_RATES else _OPUS_WORK_RATE
    y = resample(np.asarray(x, dtype=np.float32), sr, work_sr)
    buf = io.BytesIO()
    sf.write(buf, y, work_sr, format=container, subtype=subtype,
             compression_level=float(np.clip(compression_level, 0.0, 1.0)))
    buf.seek(0)
    decoded, _ = sf.read(buf, dtype="float32", always_2d=True)
    out = resample(decoded[:, 0], work_sr, sr)
    if len(out) >= len(x):
        return np.ascontiguousarray(out[: len(x)])
    return np.pad(out, (0, len(x) - len(out)))

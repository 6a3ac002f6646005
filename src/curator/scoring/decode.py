"""Decode a noisy/clean pair and decide its status: every bad input gets a short reason, never a crash.

Statuses (the ``status`` column): ``ok`` or one of :data:`REJECT_STATUSES`. A rejected row stays in the
scores table with NaN scores, and ``metrics/score.json`` counts it. A silent target under a non-silent
input is ``ok`` but flagged speech-free: intrusive proxies are undefined (NaN) for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.audio import FALLBACK_CHANNEL_POLICY, AudioError, NonFiniteAudioError, load_audio
from curator.contract.manifest import resolve_path
from curator.contract.scores import STATUS_OK

OK = STATUS_OK
UNREADABLE = "unreadable"
NAN = "nan"
NO_REFERENCE = "no_reference"
SR_MISMATCH = "sr_mismatch"
LENGTH_MISMATCH = "length_mismatch"
TOO_SHORT = "too_short"
SILENT = "silent"
REJECT_STATUSES = (UNREADABLE, NAN, NO_REFERENCE, SR_MISMATCH, LENGTH_MISMATCH, TOO_SHORT, SILENT)
DECODE_KEY = "decode"
"""Row key holding ``[rate to resample to or None, channel policy]`` from the manifest row (see
:func:`curator.audio.row_decoding`); absent for a mono file at a supported rate."""


@dataclass(frozen=True)
class DecodeRules:
    """When a pair is rejected (from the ``score`` params)."""

    min_duration_sec: float
    silence_dbfs: float
    max_length_mismatch_sec: float


@dataclass
class Decoded:
    status: str
    noisy: np.ndarray | None = None
    clean: np.ndarray | None = None
    sr: int = 0
    speech_free: bool = False
    duration_sec: float | None = None
    """Decoded length of the noisy input (None when it does not decode): the scores table's ``duration_sec``."""


def _load(path: str, target: int | None, channels: str) -> tuple[str, np.ndarray | None, int]:
    try:
        x, sr = load_audio(resolve_path(path), sr=target, channels=channels)
    except NonFiniteAudioError:
        return NAN, None, 0
    except AudioError:
        return UNREADABLE, None, 0
    return OK, x, sr


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    ms = float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0
    return 10.0 * np.log10(ms) if ms > 0 else float("-inf")


def decode_pair(row: dict[str, Any], rules: DecodeRules) -> Decoded:
    """Load ``row['path']`` and ``row['clean_path']`` and check them against ``rules``."""
    target, channels = row.get(DECODE_KEY) or (None, FALLBACK_CHANNEL_POLICY)
    status, noisy, sr = _load(row["path"], target, channels)
    duration = len(noisy) / sr if noisy is not None and sr else None
    if not row.get("clean_path"):
        return Decoded(NO_REFERENCE, duration_sec=duration)
    if status != OK:
        return Decoded(status)
    assert noisy is not None
    status, clean, clean_sr = _load(row["clean_path"], target, channels)
    if status != OK:
        return Decoded(status, duration_sec=duration)
    assert clean is not None
    if sr != clean_sr or sr != int(row["sr"]):
        return Decoded(SR_MISMATCH, duration_sec=duration)
    if abs(len(noisy) - len(clean)) > rules.max_length_mismatch_sec * sr:
        return Decoded(LENGTH_MISMATCH, duration_sec=duration)
    n = min(len(noisy), len(clean))
    noisy, clean = noisy[:n], clean[:n]
    if n < rules.min_duration_sec * sr or n == 0:
        return Decoded(TOO_SHORT, duration_sec=duration)
    if rms_dbfs(noisy) < rules.silence_dbfs:
        return Decoded(SILENT, duration_sec=duration)
    # a silent target under a noisy input is a legitimate noise-only (speech-free) training example
    return Decoded(OK, noisy, clean, sr, speech_free=rms_dbfs(clean) < rules.silence_dbfs, duration_sec=duration)

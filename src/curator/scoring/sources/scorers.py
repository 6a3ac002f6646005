"""Light scorers of noise, wind-noise and RIR sources (``source_score.noise.scorers`` / ``.rir.scorers``).

Each reuses the pair scorer's code under its own column names (the batch's ``clean`` signal is the source):

- ``level``: ``noise_level_dbfs``, the RMS of the frames the official simulation's activity detector marks
  active (ESPnet ``detect_non_silence``: the same active power its SNR scaling divides by);
- ``bandwidth``: ``noise_bandwidth_hz``, the effective bandwidth as the ``bandwidth`` scorer measures it;
- ``vad``: ``noise_speech_ratio``, the Silero VAD speech-frame share as the ``vad`` scorer computes it;
- ``clipping``: ``noise_clip_ratio``, as the ``clipping`` scorer computes ``ref_clip_ratio``;
- ``decay`` (RIRs): ``rir_rt60_sec`` from a T20 fit of the Schroeder energy decay curve (-5 to -25 dB after
  the direct path, extrapolated to 60 dB; NaN when the decay never reaches -25 dB) and ``rir_drr_db``, the
  energy within ``DIRECT_MS`` of the direct-path peak over the energy after it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curator.datasets.simulation.distortions import active_power
from curator.registry import Registry
from curator.scoring.base import AudioBatch, Scorer, float_columns
from curator.scoring.scorers.bandwidth import BandwidthScorer
from curator.scoring.scorers.clipping import ClippingScorer
from curator.scoring.scorers.vad import VadScorer

SOURCE_SCORERS: Registry[type[Scorer]] = Registry("source scorer")
"""Scorers of noise and RIR sources by name; ``base`` names the pair scorer whose options (``score.options``) they take."""
NOISE_KINDS = ("noise", "wind_noise")

ACTIVE_THRESHOLD = 0.01
ACTIVE_FRAME_LENGTH = 1024
ACTIVE_FRAME_SHIFT = 512
"""The official simulation's activity detector (threshold x mean frame power, 1024-sample frames, 512 hop)."""
LEVEL_FLOOR_DBFS = -200.0
"""Level of digital silence (such a clip is rejected as silent before it is scored)."""
DIRECT_MS = 2.5
"""Half-width of the direct-path window around the RIR's peak (the usual DRR convention)."""
DECAY_FIT_DB = (-5.0, -25.0)
"""Energy decay range of the T20 fit."""


def _rename(values: dict[str, np.ndarray], names: dict[str, str]) -> dict[str, np.ndarray]:
    return {new: values[old] for old, new in names.items()}


@SOURCE_SCORERS.register("level")
class NoiseLevelScorer(Scorer):
    name = "level"
    outputs = ("noise_level_dbfs",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        power = np.array([active_power(x, ACTIVE_THRESHOLD, ACTIVE_FRAME_LENGTH, ACTIVE_FRAME_SHIFT)
                          for x in batch.clean])
        with np.errstate(divide="ignore"):
            level = np.maximum(10.0 * np.log10(power), LEVEL_FLOOR_DBFS)
        return {"noise_level_dbfs": level}


@SOURCE_SCORERS.register("bandwidth")
class NoiseBandwidthScorer(BandwidthScorer):
    name = "bandwidth"
    outputs = ("noise_bandwidth_hz",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        return _rename(super().score_batch(batch), {"ref_bandwidth_hz": "noise_bandwidth_hz"})


@SOURCE_SCORERS.register("vad")
class NoiseVadScorer(VadScorer):
    name = "vad"
    outputs = ("noise_speech_ratio",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        return _rename(super().score_batch(batch), {"ref_speech_ratio": "noise_speech_ratio"})


@SOURCE_SCORERS.register("clipping")
class NoiseClippingScorer(ClippingScorer):
    name = "clipping"
    outputs = ("noise_clip_ratio",)

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        return _rename(super().score_batch(batch), {"ref_clip_ratio": "noise_clip_ratio"})


def rir_decay(h: np.ndarray, sr: int) -> tuple[float, float]:
    """(RT60 in seconds from the T20 fit, direct-to-reverberant ratio in dB) of one impulse response."""
    h = np.asarray(h, dtype=np.float64)
    peak = int(np.argmax(np.abs(h)))
    half = int(round(DIRECT_MS * 1e-3 * sr))
    energy = np.square(h)
    direct = energy[max(peak - half, 0): peak + half + 1].sum()
    late = energy[peak + half + 1:].sum()
    drr = 10.0 * np.log10(direct / late) if late > 0 and direct > 0 else np.nan
    tail = energy[peak:]
    edc = np.cumsum(tail[::-1])[::-1]
    if edc[0] <= 0:
        return np.nan, drr
    edc_db = 10.0 * np.log10(np.maximum(edc / edc[0], 1e-300))
    hi, lo = DECAY_FIT_DB
    idx = np.flatnonzero((edc_db <= hi) & (edc_db >= lo))
    if edc_db[-1] > lo or len(idx) < 2:
        return np.nan, drr  # the decay never reaches the fit's lower end: too short or noise-floored
    slope, _ = np.polyfit(idx / sr, edc_db[idx], 1)
    return (-60.0 / slope if slope < 0 else np.nan), drr


@SOURCE_SCORERS.register("decay")
class RirDecayScorer(Scorer):
    name = "decay"
    outputs = ("rir_rt60_sec", "rir_drr_db")

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        out = np.array([rir_decay(x, int(sr)) for x, sr in zip(batch.clean, batch.sr, strict=True)],
                       dtype=np.float64).reshape(len(batch), 2)
        return {"rir_rt60_sec": out[:, 0], "rir_drr_db": out[:, 1]}


BASE_SCORER = {"bandwidth": "bandwidth", "vad": "vad", "clipping": "clipping"}
"""Source scorer -> pair scorer whose ``score.options`` entry it takes (the others have no options)."""
NOISE_SCORERS = ("level", "bandwidth", "vad", "clipping")
"""Valid ``source_score.noise.scorers``."""
RIR_SCORERS = ("decay",)
"""Valid ``source_score.rir.scorers``."""

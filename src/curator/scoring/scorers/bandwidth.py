"""Reference quality: effective bandwidth of the clean target in Hz (band-limited or upsampled references).

The long-term power spectrum is averaged over the active frames; the bandwidth is the highest frequency
whose level is within ``drop_db`` of the spectrum's peak. A reference resampled up from 8 kHz has ~4 kHz
whatever its file rate. ``ref_bandwidth_ratio`` is that over what the file should carry, its Nyquist
frequency or ``full_band_hz`` (ITU-T wide-band speech ends at 7 kHz) whichever is lower: below 1 means
band-limited for its rate. Vectorised per sampling rate with torch.stft.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns, pad

WINDOW_SEC = 0.032  # analysis window (rounded up to a power of two in samples)
ACTIVE_DB = 40.0  # frames more than this below the loudest frame are left out of the long-term spectrum
POWER_FLOOR = 1e-20  # keeps log10 finite on digital silence


@dataclass
class BandwidthOptions:
    """``score.options.bandwidth``."""

    drop_db: float = 50.0
    full_band_hz: float = 7000.0

    def __post_init__(self) -> None:
        from curator.config import check_range

        check_range("score.options.bandwidth.drop_db", self.drop_db, lo=0.0, lo_open=True)
        check_range("score.options.bandwidth.full_band_hz", self.full_band_hz, lo=0.0, lo_open=True)


def effective_bandwidth(x: np.ndarray, lengths: np.ndarray, sr: int, drop_db: float) -> np.ndarray:
    """Bandwidth in Hz of every row of a padded ``(batch, time)`` batch at one sampling rate."""
    n_fft = 1 << int(np.ceil(np.log2(WINDOW_SEC * sr)))
    hop = n_fft // 2
    wav = torch.from_numpy(x).double()  # float64 FFT: float32 kernels differ in the last bits between CPUs
    if wav.shape[-1] < n_fft:
        wav = torch.nn.functional.pad(wav, (0, n_fft - wav.shape[-1]))
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(wav, n_fft, hop, window=window, center=False, return_complex=True)
    power = spec.abs().square()  # (batch, freq, frames), float64
    frames = torch.from_numpy(np.maximum(1 + (lengths - n_fft) // hop, 1))
    valid = torch.arange(power.shape[-1])[None, :] < frames[:, None]
    energy_db = 10 * torch.log10(power.sum(1) + POWER_FLOOR)
    loudest = torch.where(valid, energy_db, -torch.inf).amax(-1, keepdim=True)
    active = (valid & (energy_db >= loudest - ACTIVE_DB)).double()
    lt = (power * active[:, None, :]).sum(-1) / active.sum(-1, keepdim=True).clamp(min=1)
    lt_db = 10 * torch.log10(lt + POWER_FLOOR)
    above = lt_db >= lt_db.amax(-1, keepdim=True) - drop_db  # (batch, freq)
    highest = above.shape[-1] - 1 - torch.flip(above, dims=[-1]).int().argmax(-1)
    return (highest.double() * sr / n_fft).numpy()


@SCORERS.register("bandwidth")
class BandwidthScorer(Scorer):
    name = "bandwidth"
    outputs = ("ref_bandwidth_hz", "ref_bandwidth_ratio")
    Options = BandwidthOptions

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        out = np.full(len(batch), np.nan)
        for sr in np.unique(batch.sr):
            rows = np.flatnonzero(batch.sr == sr)
            x, lengths = pad([batch.clean[i] for i in rows])
            out[rows] = effective_bandwidth(x, lengths, int(sr), self.options.drop_db)
        out[batch.speech_free] = np.nan
        expected = np.minimum(batch.sr / 2.0, self.options.full_band_hz)
        return {"ref_bandwidth_hz": out, "ref_bandwidth_ratio": np.minimum(out / expected, 1.0)}

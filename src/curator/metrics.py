"""Intrusive speech metrics shared by scoring (noisy vs clean) and evaluation (enhanced vs clean).

SI-SDR is vectorised in numpy over a padded batch; ESTOI and PESQ wrap the reference implementations
(pystoi, pesq) with URGENT's conventions: PESQ narrow-band at 8 kHz, wide-band at 16 kHz otherwise.
"""

from __future__ import annotations

import numpy as np

from curator.audio import resample

EPS = 1e-8
PESQ_WB_SR = 16000
PESQ_NB_SR = 8000
ESTOI_MIN_SECONDS = 0.4  # pystoi needs at least ~30 frames of 384 samples at 10 kHz after silence removal


def si_sdr(est: np.ndarray, ref: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Scale-invariant SDR in dB for 1-D signals or (batch, time) padded batches.

    ``lengths`` masks padding per row. Both signals are made zero-mean over their valid samples first.
    """
    est = np.atleast_2d(np.asarray(est, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    if est.shape != ref.shape:
        raise ValueError(f"si_sdr: shapes differ {est.shape} vs {ref.shape}")
    n = est.shape[1]
    if lengths is None:
        mask = np.ones_like(est, dtype=bool)
        counts = np.full(est.shape[0], n, dtype=np.float64)
    else:
        lengths = np.asarray(lengths)
        mask = np.arange(n)[None, :] < lengths[:, None]
        counts = np.maximum(lengths.astype(np.float64), 1.0)
    est = np.where(mask, est - (est * mask).sum(1, keepdims=True) / counts[:, None], 0.0)
    ref = np.where(mask, ref - (ref * mask).sum(1, keepdims=True) / counts[:, None], 0.0)
    scale = (est * ref).sum(1, keepdims=True) / ((ref * ref).sum(1, keepdims=True) + EPS)
    target = scale * ref
    noise = est - target
    out = 10.0 * np.log10(((target * target).sum(1) + EPS) / ((noise * noise).sum(1) + EPS))
    return out if out.size > 1 else out.reshape(())


def snr(noisy: np.ndarray, clean: np.ndarray) -> float:
    """SNR in dB of ``noisy`` against ``clean`` treating ``noisy - clean`` as the noise."""
    noise = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return float(10.0 * np.log10((np.sum(np.square(clean, dtype=np.float64)) + EPS) / (np.sum(noise**2) + EPS)))


def estoi(est: np.ndarray, ref: np.ndarray, sr: int) -> float:
    """Extended STOI (pystoi, which resamples to 10 kHz itself); NaN when the signal is too short."""
    from pystoi import stoi

    if len(ref) < ESTOI_MIN_SECONDS * sr:
        return float("nan")
    return float(stoi(np.asarray(ref, np.float64), np.asarray(est, np.float64), sr, extended=True))


def pesq_score(est: np.ndarray, ref: np.ndarray, sr: int) -> float:
    """PESQ as URGENT computes it: NB at 8 kHz input, WB on 16 kHz (resampled) otherwise; NaN on failure.

    PESQ fails on inputs without an utterance (e.g. silence); that is reported as NaN, never a crash.
    """
    from pesq import NoUtterancesError, PesqError, pesq

    mode, target = ("nb", PESQ_NB_SR) if sr == PESQ_NB_SR else ("wb", PESQ_WB_SR)
    if not np.any(ref) or not np.any(est):
        return float("nan")
    r = resample(np.asarray(ref, np.float32), sr, target)
    e = resample(np.asarray(est, np.float32), sr, target)
    try:
        return float(pesq(target, r, e, mode))
    except (NoUtterancesError, PesqError, ValueError):
        return float("nan")


def snr_batch(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """:func:`snr` along the last axis of ``(batch, time)`` arrays; zero padding adds nothing to either sum."""
    noisy = np.asarray(noisy, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    noise = noisy - clean
    return 10.0 * np.log10((np.sum(clean * clean, axis=-1) + EPS) / (np.sum(noise * noise, axis=-1) + EPS))

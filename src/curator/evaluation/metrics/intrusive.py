"""Intrusive metrics (need the clean reference): PESQ, ESTOI, SDR, SI-SDR, LSD and MCD from ``curator.metrics``.

They follow the official URGENT evaluation script (2026 for PESQ and ESTOI, 2025 for SDR, LSD and MCD), which
``benchmarks/compare_official_metrics.py`` checks at all seven URGENT rates. Deviations, all on inputs the
official script does not score: a pair of different lengths is cut to the shorter one (the official script
asserts equal shapes); ESTOI of a signal shorter than one pystoi frame is NaN (the official script stops); PESQ
at a rate between 8 and 16 kHz is computed on 16 kHz (the official script refuses it). As in the official
script, PESQ of a too-short signal is its error code (-6.0) and ESTOI with too few speech frames is 1e-5.

Agreement with the official 2025 script (``compare_official_metrics.py``, 56 pairs: 8 degradations x 7 rates):
PESQ exact, ESTOI 1e-14, LSD 1e-6, MCD 1.3e-6, SDR at most 0.0074 dB (mean 0.0005). The SDR residue is on the
band-limited pairs only (5 of 56 differ by more than 0.001 dB, all "bandlimit" at 16-48 kHz, SDR 34-39 dB): there
the 512-tap normal equations are ill-conditioned and float32 rounding is amplified, so the value depends on the
FFT and LAPACK builds. The same ``curator.metrics.sdr`` code differs by up to 0.008 dB between numpy 1.26 /
scipy 1.13 (the official script's environment, where it is within 0.0057 dB of fast-bss-eval) and numpy 2.4:
agreement closer than ~0.01 dB on such inputs is not attainable in float32, and a float64 solve would move
further away (0.2 dB).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from curator import metrics as core
from curator.evaluation.metrics import (
    DEFAULT_OPTIONS,
    MetricOptions,
    MetricResources,
    map_utterances,
    register_metric,
)

SI_SDR_CHUNK = 64  # utterances per padded SI-SDR batch (bounds the padded matrix's memory)
official_pesq = functools.partial(core.pesq_score, official_errors=True)
official_estoi = functools.partial(core.estoi, min_seconds=0.0)


def _sdr(est: np.ndarray, ref: np.ndarray, sr: int) -> float:
    return core.sdr(est, ref)


@register_metric("pesq", "intrusive", resources=MetricResources(packages=("pesq",)))
def pesq(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
         pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """PESQ, NB at 8 kHz and WB (at 16 kHz) otherwise, as URGENT computes it."""
    return map_utterances(official_pesq, estimates, references, srs, pool)


@register_metric("estoi", "intrusive", resources=MetricResources(packages=("pystoi",)))
def estoi(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
          pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Extended STOI."""
    return map_utterances(official_estoi, estimates, references, srs, pool)


@register_metric("sdr", "intrusive", resources=MetricResources(packages=("scipy",)))
def sdr(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
        pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """BSS-eval SDR (512-tap distortion filter, clamped at 50 dB), as fast-bss-eval computes it."""
    return map_utterances(_sdr, estimates, references, srs, pool)


@register_metric("lsd", "intrusive", higher_is_better=False, resources=MetricResources(packages=("librosa",)))
def lsd(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
        pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Log-spectral distance of the least-squares-scaled estimate."""
    return map_utterances(core.lsd, estimates, references, srs, pool)


@register_metric("mcd", "intrusive", higher_is_better=False,
                 resources=MetricResources(packages=("pysptk", "fastdtw")))
def mcd(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
        pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Mel-cepstral distortion along a FastDTW path (URGENT 2025)."""
    return map_utterances(core.mcd, estimates, references, srs, pool)


@register_metric("si_sdr", "intrusive")
def si_sdr(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
           pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Scale-invariant SDR in dB, vectorised over zero-padded chunks of utterances."""
    out = np.empty(len(estimates))
    for lo in range(0, len(estimates), SI_SDR_CHUNK):
        est, ref = estimates[lo:lo + SI_SDR_CHUNK], references[lo:lo + SI_SDR_CHUNK]
        lengths = np.array([min(len(e), len(r)) for e, r in zip(est, ref, strict=True)])
        width = int(lengths.max())
        pad_e, pad_r = np.zeros((len(est), width)), np.zeros((len(est), width))
        for i, (e, r, n) in enumerate(zip(est, ref, lengths, strict=True)):
            pad_e[i, :n], pad_r[i, :n] = e[:n], r[:n]
        out[lo:lo + len(est)] = np.atleast_1d(core.si_sdr(pad_e, pad_r, lengths))
    return out

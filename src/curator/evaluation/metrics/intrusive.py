"""Intrusive metrics (need the clean reference): PESQ, ESTOI and SI-SDR from ``curator.metrics``."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from curator import metrics as core
from curator.evaluation.metrics import map_utterances, register_metric

SI_SDR_CHUNK = 64  # utterances per padded SI-SDR batch (bounds the padded matrix's memory)


@register_metric("pesq", "intrusive")
def pesq(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
         pool: Executor | None) -> np.ndarray:
    """PESQ, NB at 8 kHz and WB (at 16 kHz) otherwise, as URGENT computes it."""
    return map_utterances(core.pesq_score, estimates, references, srs, pool)


@register_metric("estoi", "intrusive")
def estoi(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
          pool: Executor | None) -> np.ndarray:
    """Extended STOI."""
    return map_utterances(core.estoi, estimates, references, srs, pool)


@register_metric("si_sdr", "intrusive")
def si_sdr(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
           pool: Executor | None) -> np.ndarray:
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

"""Per-file audio checks shared by the manifest build and ``verify``: decodable, non-empty, finite, not
silent, and consistent with what the lists claim. Runs in a process pool; failures become reasons, never
exceptions, so one bad file is a counted rejection rather than a crash half-way."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from tqdm import tqdm

CHUNK = 64
"""Files per task sent to a worker (amortises inter-process overhead on short files)."""


@dataclass(frozen=True)
class AudioCheck:
    """What one file turned out to be; ``reason`` is None when it is usable."""

    reason: str | None
    sr: int | None = None
    frames: int | None = None


@dataclass(frozen=True)
class CheckRequest:
    """One file to check: ``mode`` is header | decode; silence is an error unless ``allow_silent``."""

    path: str
    mode: str
    silence_peak: float
    allow_silent: bool = False


def check_audio(req: CheckRequest) -> AudioCheck:
    """Check one file; the reason vocabulary is missing | undecodable | empty | nonfinite | silent."""
    if not os.path.isfile(req.path):
        return AudioCheck("missing")
    try:
        if req.mode == "header":
            info = sf.info(req.path)
            sr, frames = int(info.samplerate), int(info.frames)
            return AudioCheck("empty" if frames == 0 else None, sr, frames)
        data, sr = sf.read(req.path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return AudioCheck("undecodable")
    frames = int(data.shape[0])
    if frames == 0:
        return AudioCheck("empty", int(sr), 0)
    if not np.isfinite(data).all():
        return AudioCheck("nonfinite", int(sr), frames)
    if not req.allow_silent and float(np.abs(data).max()) < req.silence_peak:
        return AudioCheck("silent", int(sr), frames)
    return AudioCheck(None, int(sr), frames)


def _check_chunk(reqs: Sequence[CheckRequest]) -> list[AudioCheck]:
    return [check_audio(r) for r in reqs]


def check_many(reqs: Sequence[CheckRequest], workers: int, desc: str = "check audio",
               executor: Executor | None = None) -> list[AudioCheck]:
    """Check every request, in order, on ``workers`` processes (or an injected executor)."""
    chunks = [reqs[i : i + CHUNK] for i in range(0, len(reqs), CHUNK)]
    out: list[AudioCheck] = []
    bar = tqdm(total=len(reqs), desc=desc, unit="file", disable=len(reqs) < CHUNK)
    if executor is None and (workers <= 1 or len(chunks) <= 1):
        for chunk in chunks:
            out.extend(_check_chunk(chunk))
            bar.update(len(chunk))
    else:
        pool = executor or ProcessPoolExecutor(workers)
        try:
            for res in pool.map(_check_chunk, chunks):
                out.extend(res)
                bar.update(len(res))
        finally:
            if executor is None:
                pool.shutdown()
    bar.close()
    return out

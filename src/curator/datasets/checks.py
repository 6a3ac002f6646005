"""Per-file audio checks shared by the manifest build and ``verify``: decodable, non-empty, finite, not
silent, and consistent with what the lists claim. Runs in a process pool; failures become reasons, never
exceptions, so one bad file is a counted rejection rather than a crash half-way."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from tqdm import tqdm

from curator.audio import target_rate
from curator.contract.manifest import Utterance, resolve_path

CHUNK = 64
"""Files per task sent to a worker (amortises inter-process overhead on short files)."""
FULL_SCALE = 1.0
"""Digital full scale of float audio: a PCM file cannot exceed it, a float file peaking above it is counted."""
PEAK_DECIMALS = 3
"""Decimals of the peak reported in the manifest metrics."""


@dataclass(frozen=True)
class AudioCheck:
    """What one file turned out to be; ``reason`` is None when it is usable."""

    reason: str | None
    sr: int | None = None
    frames: int | None = None
    peak: float | None = None
    """Largest absolute sample (``decode`` mode only)."""


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
    if os.path.getsize(req.path) == 0:  # a 0-byte file: nothing to decode (named apart from a corrupt one)
        return AudioCheck("empty")
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
    peak = float(np.abs(data).max())
    if not req.allow_silent and peak < req.silence_peak:
        return AudioCheck("silent", int(sr), frames, peak)
    return AudioCheck(None, int(sr), frames, peak)


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


class FullScaleTally:
    """Kept files of float audio peaking above :data:`FULL_SCALE`: kept as they are (a file's level is the data's
    own), but counted and named in the manifest metrics (``over_full_scale``) and warned about, since writing them
    as PCM clips them and level-dependent scores (DNSMOS, clipping flags) read them differently."""

    def __init__(self) -> None:
        self.n = 0
        self.max_peak = 0.0
        self.max_path: str | None = None

    def add(self, path: str, peak: float | None) -> None:
        if peak is None or peak <= FULL_SCALE:
            return
        self.n += 1
        if peak > self.max_peak:
            self.max_peak, self.max_path = peak, path

    def summary(self) -> dict:
        return {"n": self.n, "max_peak": round(self.max_peak, PEAK_DECIMALS) if self.n else None, "max_peak_file": self.max_path}


# ------------------------------------------------------------------------------------ input policies


def _header(path: str | None) -> tuple[int, int] | None:
    """(sample rate, channels) of a file from its header; None when absent or unreadable (other checks say why)."""
    if path is None:
        return None
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return None
    return int(info.samplerate), int(info.channels)


@dataclass
class Rejection:
    """A file left out of the manifest, and why."""

    utt_id: str
    path: str
    reason: str


class InputPolicy:
    """The manifest stage's rate and channel policies (``dataset.sample_rates``, ``rate_policy``,
    ``channel_policy``), applied to every row of every dataset as the rows stream to the manifest writer.

    A multi-channel file is rejected (``multichannel``) or kept with ``custom.channels`` and
    ``custom.channel_policy`` recorded in its row, which every decoder (scoring, training, evaluation) applies.
    A file at a rate outside ``sample_rates`` is rejected (``unsupported_rate``) or kept with
    ``custom.source_sr`` and ``sr`` set to the rate decoders resample it to (:func:`curator.audio.target_rate`).
    Rejections join the importer's, so they are counted by reason and named in the metrics.
    """

    def __init__(self, sample_rates: Sequence[int], rate_policy: str, channel_policy: str, workers: int) -> None:
        self.sample_rates = tuple(sorted(int(r) for r in sample_rates))
        self.rate_policy = rate_policy
        self.channel_policy = channel_policy
        self.workers = max(1, workers)
        self.resampled: Counter[str] = Counter()
        self.multichannel: Counter[int] = Counter()
        self.resampled_ids: list[str] = []
        self.multichannel_ids: list[str] = []

    def apply(self, rows: Iterable[Utterance], rejected: list) -> Iterator[Utterance]:
        """Yield the rows that pass (some amended); append a ``Rejection`` to ``rejected`` for the others."""
        def headers(row: Utterance) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
            clean = str(resolve_path(row.clean_path)) if row.clean_path else None
            return _header(str(resolve_path(row.path))), _header(clean)

        with ThreadPoolExecutor(self.workers) as pool:
            for chunk in _batched(rows, CHUNK * 4):
                for row, (noisy, clean) in zip(chunk, pool.map(headers, chunk), strict=True):
                    reason = self._amend(row, noisy, clean)
                    if reason is None:
                        yield row
                    else:
                        rejected.append(Rejection(row.utt_id, row.path, reason))

    def _amend(self, row: Utterance, noisy: tuple[int, int] | None, clean: tuple[int, int] | None) -> str | None:
        channels = max(h[1] for h in (noisy, clean, (0, 1)) if h is not None)
        if channels > 1:
            if self.channel_policy == "reject":
                return "multichannel"
            row.custom = {**row.custom, "channels": channels, "channel_policy": self.channel_policy}
            self.multichannel[channels] += 1
            self.multichannel_ids.append(row.utt_id)
        if row.sr not in self.sample_rates:
            if self.rate_policy == "reject":
                return "unsupported_rate"
            target = target_rate(row.sr, self.sample_rates)
            self.resampled[f"{row.sr}->{target}"] += 1
            self.resampled_ids.append(row.utt_id)
            row.custom = {**row.custom, "source_sr": row.sr}
            row.sr = target
        return None

    def summary(self, max_examples: int) -> dict:
        """What the policies did (rejections are in the split's ``rejected_by_reason``)."""
        return {
            "sample_rates": list(self.sample_rates), "rate_policy": self.rate_policy,
            "resampled": sum(self.resampled.values()), "resampled_by_rate": dict(sorted(self.resampled.items())),
            "resampled_examples": self.resampled_ids[:max_examples],
            "channel_policy": self.channel_policy, "multichannel": sum(self.multichannel.values()),
            "multichannel_by_channels": {str(k): v for k, v in sorted(self.multichannel.items())},
            "multichannel_examples": self.multichannel_ids[:max_examples],
        }


def _batched(rows: Iterable[Utterance], size: int) -> Iterator[list[Utterance]]:
    chunk: list[Utterance] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

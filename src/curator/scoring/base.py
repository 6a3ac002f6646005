"""Scorer plug-in contract (NeMo-Curator style) and the audio batch scorers consume.

A scorer declares the columns it writes, the signals it reads, its resources and batch size; ``setup()``
loads its model once per worker and ``score_batch()`` is a pure function of the batch. Adding one is a new
module in ``curator.scoring.scorers`` with ``@SCORERS.register("name")``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from curator.audio import resample
from curator.registry import Registry

Signal = Literal["noisy", "clean"]


class ScoringError(RuntimeError):
    """Scoring cannot run as configured (missing weights or package, nothing to score); says what to do."""


@dataclass(frozen=True)
class Resources:
    """What one instance of a scorer needs (Ray uses it to size actors)."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass
class NoOptions:
    """Options of a scorer that has none."""


@dataclass
class AudioPool:
    """The decoded ``ok`` utterances of one shard; caches resampled copies shared by every scorer's batches."""

    utt_ids: list[str]
    sr: np.ndarray
    noisy: list[np.ndarray]
    clean: list[np.ndarray]
    speech_free: np.ndarray
    _cache: dict[tuple[str, int], list[np.ndarray | None]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def resampled(self, which: Signal, sr: int, rows: Sequence[int]) -> list[np.ndarray]:
        native, other = (self.noisy, self.clean) if which == "noisy" else (self.clean, self.noisy)
        cache = self._cache.setdefault((which, sr), [None] * len(self))
        twin = self._cache.get(("clean" if which == "noisy" else "noisy", sr))
        for i in rows:
            if cache[i] is None:
                # one array as both signals (a source scored alone): resample it once for both
                same = twin is not None and twin[i] is not None and native[i] is other[i]
                cache[i] = twin[i] if same else resample(native[i], int(self.sr[i]), sr)  # type: ignore[index]
        return [cache[i] for i in rows]  # type: ignore[misc]

    def batch(self, rows: Sequence[int]) -> AudioBatch:
        rows = list(rows)
        return AudioBatch([self.utt_ids[i] for i in rows], self.sr[rows], [self.noisy[i] for i in rows],
                          [self.clean[i] for i in rows], self.speech_free[rows], _pool=self, _rows=rows)


@dataclass
class AudioBatch:
    """Decoded utterances scored together (length-bucketed by the runner).

    ``noisy[i]`` and ``clean[i]`` are float32 mono at ``sr[i]`` with equal lengths; rates may differ between
    rows. Resampled views come from the shard's cache, so several 16 kHz scorers share one resampling.
    ``speech_free[i]`` marks a silent target (noise-only example): intrusive proxies are NaN there.
    """

    utt_ids: list[str]
    sr: np.ndarray
    noisy: list[np.ndarray]
    clean: list[np.ndarray]
    speech_free: np.ndarray
    _pool: AudioPool | None = field(default=None, repr=False)
    _rows: list[int] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def signals(self, which: Signal, sr: int | None = None) -> list[np.ndarray]:
        """The ``which`` signals, at their native rate (``sr=None``) or resampled to ``sr``."""
        native = self.noisy if which == "noisy" else self.clean
        if sr is None:
            return native
        if self._pool is not None:
            return self._pool.resampled(which, sr, self._rows)
        return [resample(x, int(r), sr) for x, r in zip(native, self.sr, strict=True)]

    def padded(self, which: Signal, sr: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Zero-padded ``(batch, time)`` float32 array of the signals and their lengths (int64)."""
        return pad(self.signals(which, sr))


def pad(signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack 1-D signals into a zero-padded ``(batch, time)`` float32 array plus their lengths."""
    lengths = np.array([len(x) for x in signals], dtype=np.int64)
    out = np.zeros((len(signals), int(lengths.max(initial=0))), dtype=np.float32)
    for i, x in enumerate(signals):
        out[i, : len(x)] = x
    return out, lengths


class Scorer(ABC):
    """One per-utterance proxy family. Subclasses set the class attributes and implement the two methods."""

    name: ClassVar[str]
    outputs: ClassVar[tuple[str, ...]]  # the columns it writes (checked against columns())
    gpu_capable: ClassVar[bool] = False  # runs its model on cuda when score.device is cuda
    Options: ClassVar[type] = NoOptions
    batch_size: ClassVar[int | None] = None  # None: the global score.batch_size

    def __init__(self, options: Any = None, device: str = "cpu", mixed_precision: bool = False,
                 threads: int = 1) -> None:
        self.options = options if options is not None else self.Options()
        self.device = device
        self.mixed_precision = mixed_precision
        self.threads = threads

    def resources(self) -> Resources:
        """CPU threads and GPUs one instance uses (sizes Ray actors)."""
        return Resources(cpus=float(self.threads), gpus=1.0 if self.gpu_capable and self.device == "cuda" else 0.0)

    def setup(self) -> None:  # noqa: B027 - an optional hook: signal-processing scorers load nothing
        """Load models once per worker (no-op for pure signal processing)."""

    @abstractmethod
    def columns(self) -> dict[str, pa.DataType]:
        """Output column name -> Arrow type (valid after ``setup()``)."""

    @abstractmethod
    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        """Column name -> array of ``len(batch)`` values (a ``(batch, D)`` array for fixed-size lists)."""

    def settings(self) -> dict[str, Any]:
        """What the output depends on, stored in the Parquet metadata."""
        return {"options": dataclasses.asdict(self.options)}


SCORERS: Registry[type[Scorer]] = Registry("scorer", package="curator.scoring.scorers")


def undefined_on_speech_free(batch: AudioBatch, values: np.ndarray) -> np.ndarray:
    """NaN where the target is silent: an intrusive proxy against silence measures nothing."""
    return np.where(batch.speech_free, np.nan, np.asarray(values, dtype=np.float64))


def float_columns(names: Sequence[str]) -> dict[str, pa.DataType]:
    """Helper: every name is a float64 column."""
    return dict.fromkeys(names, pa.float64())

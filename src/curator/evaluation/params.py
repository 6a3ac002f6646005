"""Typed, validated view of the ``eval`` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from curator.config import ConfigError, check_choice, check_range, register_section

SLICE_COLUMNS = ("distortion", "sr", "language", "source", "speaker")


def _default_metrics() -> list[str]:
    return ["pesq", "estoi", "si_sdr"]


def _default_slices() -> list[str]:
    return ["distortion", "sr", "language"]


@register_section("eval")
@dataclass
class EvalParams:
    splits: list[Literal["dev", "test"]] = field(default_factory=lambda: ["test"])
    metrics: list[str] = field(default_factory=_default_metrics)
    peak: float = 0.9
    silent_reference_peak: float = 1e-4
    tail_fraction: float = 0.1
    slices: list[str] = field(default_factory=_default_slices)
    max_utts: int | None = None
    chunk_utts: int = 32
    num_workers: int = 2
    num_threads: int = 2
    device: Literal["cpu", "cuda"] = "cpu"

    def __post_init__(self) -> None:
        from curator.evaluation.metrics import METRICS

        if not self.splits:
            raise ConfigError("'eval.splits' must name at least one of: dev, test")
        if not self.metrics:
            raise ConfigError(f"'eval.metrics' must name at least one of: {', '.join(METRICS.names())}")
        for m in self.metrics:
            check_choice("eval.metrics", m, METRICS.names())
        for s in self.slices:
            check_choice("eval.slices", s, SLICE_COLUMNS)
        check_range("eval.peak", self.peak, lo=0.0, hi=1.0, lo_open=True)
        check_range("eval.silent_reference_peak", self.silent_reference_peak, lo=0.0)
        check_range("eval.tail_fraction", self.tail_fraction, lo=0.0, hi=1.0, lo_open=True)
        check_range("eval.max_utts", self.max_utts, lo=1)
        check_range("eval.chunk_utts", self.chunk_utts, lo=1)
        check_range("eval.num_workers", self.num_workers, lo=0)
        check_range("eval.num_threads", self.num_threads, lo=1)

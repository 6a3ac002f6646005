"""Typed, validated view of the ``source_score`` section of params.yaml.

Speech sources run the pair scorer's reference scorers with the pair scorer's own options
(``score.options.<scorer>``) and ``ref_quality`` definition (``score.ref_quality``), so a source's reference
columns mean exactly what they mean in the pairs' scores table; everything about how the stage runs
(workers, shards, device) and which scorers run on which kind is this section's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from curator.config import ConfigError, check_range, register_section
from curator.scoring.params import ExecutionMixin


@dataclass
class SpeechSourceParams:
    """``source_score.speech``: speech sources."""

    scorers: list[str]
    min_duration_sec: float = 0.5

    def __post_init__(self) -> None:
        if not self.scorers:
            raise ConfigError("'source_score.speech.scorers' is empty; list reference scorers, e.g. [dnsmos, bandwidth]")
        if len(set(self.scorers)) != len(self.scorers):
            raise ConfigError(f"'source_score.speech.scorers' lists a scorer twice: {self.scorers}")
        check_range("source_score.speech.min_duration_sec", self.min_duration_sec, lo=0.0)


@dataclass
class NoiseSourceParams:
    """``source_score.noise``: noise and wind-noise sources."""

    scorers: list[str]
    max_speech_ratio: float = 0.2
    min_duration_sec: float = 0.5

    def __post_init__(self) -> None:
        if len(set(self.scorers)) != len(self.scorers):
            raise ConfigError(f"'source_score.noise.scorers' lists a scorer twice: {self.scorers}")
        check_range("source_score.noise.max_speech_ratio", self.max_speech_ratio, lo=0.0, hi=1.0)
        check_range("source_score.noise.min_duration_sec", self.min_duration_sec, lo=0.0)


@dataclass
class RirSourceParams:
    """``source_score.rir``: room impulse responses."""

    scorers: list[str] = field(default_factory=list)
    min_duration_sec: float = 0.0

    def __post_init__(self) -> None:
        if len(set(self.scorers)) != len(self.scorers):
            raise ConfigError(f"'source_score.rir.scorers' lists a scorer twice: {self.scorers}")
        check_range("source_score.rir.min_duration_sec", self.min_duration_sec, lo=0.0)


@register_section("source_score")
@dataclass
class SourceScoreParams(ExecutionMixin):
    speech: SpeechSourceParams
    noise: NoiseSourceParams
    rir: RirSourceParams
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    executor: str = "local"
    ray_address: str | None = None
    num_workers: int = 0
    threads_per_worker: int = 1
    decode_workers: int = 2
    shard_size: int = 32
    batch_size: int = 16
    silence_dbfs: float = -60.0
    work_dir: str | None = None
    keep_shards: bool = False
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        self.check_execution("source_score")

"""Typed, validated view of the ``score`` section of params.yaml."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from curator.config import ConfigError, check_range, register_section
from curator.contract.scores import PROBE_COLUMNS


def _check_composite(where: str, weights: dict[str, float], ranges: dict[str, list[float]], anchors: str) -> None:
    if not weights or sum(weights.values()) <= 0:
        raise ConfigError(f"'{where}.weights' needs at least one positive weight")
    for col, w in weights.items():
        check_range(f"{where}.weights.{col}", w, lo=0.0)
        if col not in ranges:
            raise ConfigError(f"'{where}.ranges' has no {anchors} anchors for weighted column '{col}'; "
                              f"have: {', '.join(sorted(ranges))}")
    for col, pair in ranges.items():
        if len(pair) != 2 or not all(math.isfinite(v) for v in pair) or pair[0] == pair[1]:
            raise ConfigError(f"'{where}.ranges.{col}' must be two different numbers {anchors}")


@dataclass
class LossProxyParams:
    """``loss_proxy`` = weighted mean of per-proxy hardness values in [0, 1] (HIGHER = HARDER).

    Each proxy ``x`` maps to ``clip((x - easy) / (hard - easy), 0, 1)`` with ``ranges[col] = [easy, hard]``:
    fixed anchors rather than dataset statistics, so a row's value never depends on the other rows (shards
    and filters cannot change it). Proxies that are NaN for a row are left out and the weights renormalised.
    """

    weights: dict[str, float]
    ranges: dict[str, list[float]]
    speech_free_hardness: float
    probe_path: str | None = None

    def __post_init__(self) -> None:
        if "probe_loss" in self.weights or "probe_loss" in self.ranges:
            raise ConfigError("'score.loss_proxy.*.probe_loss' is now named for what it is: probe_holdout_loss (the "
                              "probe's held-out loss, what probe_loss was) or probe_reducible_loss (RHO-LOSS's "
                              "reducible loss, with probe.ranking=reducible_loss)")
        _check_composite("score.loss_proxy", self.weights, self.ranges, "[easy, hard]")
        check_range("score.loss_proxy.speech_free_hardness", self.speech_free_hardness, lo=0.0, hi=1.0)

    def with_probe_path(self, data_root: str | os.PathLike[str]) -> LossProxyParams:
        """These params with ``probe_path`` resolved: null means the probe stage's default output under
        ``data.root`` (:func:`default_probe_path`), where ``dvc.yaml``'s probe stage writes it."""
        if self.probe_path:
            return self
        return dataclasses.replace(self, probe_path=str(default_probe_path(data_root)))

    @property
    def probe_columns(self) -> list[str]:
        """The probe stage's columns this mix weights (empty: the probe file is not read)."""
        return [c for c in PROBE_COLUMNS if self.weights.get(c, 0.0) > 0]


PROBE_FILE = ("scores", "probe_loss.parquet")
"""The probe stage's output below ``data.root`` (its ``--out`` default, and ``probe_path: null``)."""


def default_probe_path(data_root: str | os.PathLike[str]) -> Path:
    """``<data.root>/scores/probe_loss.parquet``."""
    return Path(data_root).joinpath(*PROBE_FILE)


@dataclass
class RefQualityParams:
    """``ref_quality`` = weighted mean of reference-quality goodness in [0, 1] (HIGHER = CLEANER TARGET).

    Same fixed-anchor mapping as ``loss_proxy`` with ``ranges[col] = [bad, good]``.
    """

    weights: dict[str, float]
    ranges: dict[str, list[float]]

    def __post_init__(self) -> None:
        _check_composite("score.ref_quality", self.weights, self.ranges, "[bad, good]")


class ExecutionMixin:
    """Workers, devices and their checks, shared by ``score`` and ``source_score`` (both run the same runner); the
    dataclass using it has ``num_workers, threads_per_worker, decode_workers, shard_size, batch_size, device``."""

    def check_execution(self, section: str) -> None:
        check_range(f"{section}.num_workers", self.num_workers, lo=0)
        check_range(f"{section}.threads_per_worker", self.threads_per_worker, lo=1)
        check_range(f"{section}.decode_workers", self.decode_workers, lo=1)
        check_range(f"{section}.shard_size", self.shard_size, lo=1)
        check_range(f"{section}.batch_size", self.batch_size, lo=1)

    def workers(self) -> int:
        """Worker processes (local) or actors (ray): ``num_workers``, or one per CPU core when 0."""
        return self.num_workers or max(1, (os.cpu_count() or 1) // self.threads_per_worker)

    def resolved_device(self) -> str:
        """``auto`` -> cuda when a GPU is visible, else cpu."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


@register_section("score")
@dataclass
class ScoreParams(ExecutionMixin):
    scorers: list[str]
    loss_proxy: LossProxyParams
    ref_quality: RefQualityParams
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    executor: str = "local"
    ray_address: str | None = None
    num_workers: int = 0
    threads_per_worker: int = 1
    decode_workers: int = 2
    shard_size: int = 64
    batch_size: int = 16
    min_duration_sec: float = 0.5
    silence_dbfs: float = -60.0
    max_length_mismatch_sec: float = 0.05
    seed: int = 0
    work_dir: str | None = None
    keep_shards: bool = False
    mixed_precision: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.scorers)) != len(self.scorers):
            raise ConfigError(f"'score.scorers' lists a scorer twice: {self.scorers}")
        self.check_execution("score")
        check_range("score.min_duration_sec", self.min_duration_sec, lo=0.0)
        check_range("score.max_length_mismatch_sec", self.max_length_mismatch_sec, lo=0.0)

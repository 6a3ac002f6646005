"""Typed, validated view of the ``select`` section of params.yaml (and of a standalone quotas file)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from curator.config import ConfigError, check_range, key_of, register_section
from curator.contract.flags import FLAGS_COLUMN

QUOTA_SUM_TOLERANCE = 1e-6
"""Quota fractions of one slice-key column may sum to 1 up to float rounding."""


@dataclass
class DiversityParams:
    """Whole-selection near-duplicate exclusion in embedding space (see ``selection/diversity.py``).

    The search is exact in every mode: ``search``, ``nlist``, ``train_*`` and ``chunk_size`` decide only how
    much work is done, never which rows are selected. Cells are pruned by exact angular bounds (a fixed
    number of probed cells, the former ``nprobe``, missed pairs on dense embeddings).
    """

    min_cosine: float = 0.15
    center: bool = True
    search: Literal["auto", "exact", "ivf"] = "auto"
    exact_max_rows: int = 50_000
    nlist: int = 0
    train_points_per_list: int = 40
    train_iters: int = 10
    chunk_size: int = 8192
    stats_sample: int = 2000
    window_memory_mb: float = 256.0
    """Memory for the cell windows the greedy records for the final check (8 bytes per (row, cell) entry; about
    100 MB at 1M rows of the benchmark table, 400 MB on a dense one). Beyond it the check computes the windows
    again from the centroids: the same check, one more (rows x cells) product."""

    def __post_init__(self) -> None:
        check_range(key_of("select.diversity.min_cosine"), self.min_cosine, lo=0.0, hi=2.0)
        check_range(key_of("select.diversity.exact_max_rows"), self.exact_max_rows, lo=0)
        check_range(key_of("select.diversity.nlist"), self.nlist, lo=0)
        check_range(key_of("select.diversity.train_points_per_list"), self.train_points_per_list, lo=1)
        check_range(key_of("select.diversity.train_iters"), self.train_iters, lo=1)
        check_range(key_of("select.diversity.chunk_size"), self.chunk_size, lo=1)
        check_range(key_of("select.diversity.stats_sample"), self.stats_sample, lo=0)
        check_range(key_of("select.diversity.window_memory_mb"), self.window_memory_mb, lo=0.0)

    @property
    def enabled(self) -> bool:
        """``min_cosine = 0`` asks for cosine > 1, which no pair can exceed: the search is skipped."""
        return self.min_cosine > 0.0

    @property
    def threshold(self) -> float:
        """Two embeddings are near-duplicates when their cosine similarity exceeds this."""
        return 1.0 - self.min_cosine


@dataclass
class CoverageParams:
    """Cluster-balanced ordering of the non-tail part (cvar) and of coverage_only (``selection/coverage.py``)."""

    clusters: int = 256
    min_cluster_size: int = 8
    kmeans_iters: int = 10
    train_points_per_cluster: int = 64

    def __post_init__(self) -> None:
        check_range(key_of("select.coverage.clusters"), self.clusters, lo=1)
        check_range(key_of("select.coverage.min_cluster_size"), self.min_cluster_size, lo=1)
        check_range(key_of("select.coverage.kmeans_iters"), self.kmeans_iters, lo=1)
        check_range(key_of("select.coverage.train_points_per_cluster"), self.train_points_per_cluster, lo=1)


@dataclass
class PenaltyParams:
    quota_violation: float = 10.0

    def __post_init__(self) -> None:
        check_range(key_of("select.penalties.quota_violation"), self.quota_violation, lo=0.0)


@dataclass
class QualityGateParams:
    """A minimum reference-quality score: ``column`` (higher = cleaner) >= ``min_score``; ``None`` = off."""

    column: str = "mos_dns"
    min_score: float | None = None


@register_section("select")
@dataclass
class SelectParams:
    name: str
    K_hours: float
    alpha: float = 0.10
    seed: int = 0
    slice_key: list[str] = field(default_factory=lambda: ["distortion"])
    quotas: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per slice-key column ``{value: share of K}``; ``augmentations: {flag: share}`` for per-augmentation flags."""
    penalties: PenaltyParams = field(default_factory=PenaltyParams)
    diversity: DiversityParams = field(default_factory=DiversityParams)
    coverage: CoverageParams = field(default_factory=CoverageParams)
    quality_gate: QualityGateParams = field(default_factory=QualityGateParams)
    mos_threshold: QualityGateParams = field(default_factory=lambda: QualityGateParams(min_score=3.0))
    max_invalid_fraction: float = 0.01
    threads: int = 0
    """Threads of the selection (0: every core). The work is cut into blocks whose shapes follow the data, each
    run single-threaded (``workers.py``), so the output bytes are the same for any count; it is therefore not
    recorded in the sidecar (see :func:`recorded_config`), and changing it reruns nothing downstream."""

    def __post_init__(self) -> None:
        check_range("select.K_hours", self.K_hours, lo=0.0, lo_open=True)
        check_range("select.threads", self.threads, lo=0)
        if not math.isfinite(self.K_hours):
            raise ConfigError(f"'select.K_hours' = {self.K_hours} must be finite")
        check_range("select.alpha", self.alpha, lo=0.0, hi=1.0)
        check_range("select.max_invalid_fraction", self.max_invalid_fraction, lo=0.0, hi=1.0)
        if not self.slice_key:
            raise ConfigError("'select.slice_key' must name at least one column, e.g. [distortion]")
        if len(set(self.slice_key)) != len(self.slice_key):
            raise ConfigError(f"'select.slice_key' repeats a column: {self.slice_key}")
        validate_quotas(self.quotas, self.slice_key, "select.quotas")
        for where, gate in (("quality_gate", self.quality_gate), ("mos_threshold", self.mos_threshold)):
            if not gate.column:
                raise ConfigError(f"'select.{where}.column' must name a scores column, e.g. mos_dns or ref_quality")
            if gate.min_score is not None and not math.isfinite(gate.min_score):
                raise ConfigError(f"'select.{where}.min_score' = {gate.min_score} must be finite (or null = off)")
        if self.name == "mos_threshold" and self.mos_threshold.min_score is None:
            raise ConfigError("'select.mos_threshold.min_score' must be a number when select.name is mos_threshold")

    def quality_columns(self) -> list[str]:
        """Reference-quality columns the gate and the strategy read (they must exist in the scores)."""
        used = [self.quality_gate.column] if self.quality_gate.min_score is not None else []
        if self.name == "mos_threshold":
            used.append(self.mos_threshold.column)
        return list(dict.fromkeys(used))


def validate_quotas(quotas: dict[str, dict[str, float]], slice_key: list[str], where: str) -> None:
    """Quota columns must be slice-key columns, fractions in [0, 1] summing to at most 1 per column.

    ``augmentations`` is the exception: its keys are per-augmentation flags (``contract/flags.py``), each a
    share of K with that flag whatever else was applied; flags overlap, so their sum is not bounded, and
    each listed flag adds a ``+flag`` / ``-flag`` dimension to the slices (no slice-key entry needed).
    """
    if FLAGS_COLUMN in slice_key:
        raise ConfigError(
            f"{where}: '{FLAGS_COLUMN}' cannot be a slice-key column (a row has several); put per-augmentation "
            f"quotas under select.quotas.{FLAGS_COLUMN}, e.g. {{reverb: 0.5}}, which slices by each listed flag"
        )
    for column, fractions in quotas.items():
        if column != FLAGS_COLUMN and column not in slice_key:
            raise ConfigError(
                f"{where}: quota column '{column}' is not a slice-key column; select.slice_key is {slice_key} "
                f"(add '{column}' there or remove its quotas; per-augmentation flags go under "
                f"select.quotas.{FLAGS_COLUMN})"
            )
        for value, frac in fractions.items():
            if not 0.0 <= frac <= 1.0:
                raise ConfigError(f"{where}: quota {column}.{value} = {frac} must lie in [0, 1] (a share of K)")
        if column == FLAGS_COLUMN:
            bad = [v for v in fractions if not v or v != v.strip()]
            if bad:
                raise ConfigError(f"{where}: quota {column} has a blank or space-padded flag name {bad[0]!r}")
            continue
        total = sum(fractions.values())
        if total > 1.0 + QUOTA_SUM_TOLERANCE:
            raise ConfigError(f"{where}: quotas of '{column}' sum to {total:.4f}; they are shares of K and must "
                              "sum to <= 1 (per-augmentation flags, which overlap, go under "
                              f"select.quotas.{FLAGS_COLUMN})")


EXECUTION_ONLY = ("threads", "diversity.search", "diversity.exact_max_rows", "diversity.nlist",
                  "diversity.train_points_per_list", "diversity.train_iters", "diversity.chunk_size",
                  "diversity.window_memory_mb")
"""Params that change how fast a selection runs, never what it selects (the diversity search is exact in every
mode, :class:`DiversityParams`)."""
REPORT_ONLY = ("diversity.stats_sample",)
"""Params of the report (``metrics/select.json``), never of the list."""
STRATEGY_ONLY = ("alpha", "coverage", "mos_threshold", "hardness", "list")
"""Fields that only some strategies read: each selector names its own in ``BaseSelector.reads`` (``hardness`` and
``list`` exist at the source level only)."""


def recorded_config(params: object, reads: Iterable[str] = ()) -> dict:
    """What a sidecar records: the params that define the list.

    ``dataclasses.asdict(params)`` without the :data:`EXECUTION_ONLY` and :data:`REPORT_ONLY` fields and without
    the :data:`STRATEGY_ONLY` fields outside ``reads`` (the strategy's own). The sidecar sits beside the list in
    the folder the training stages depend on, so a change of any left-out param (``select.alpha`` under
    ``select.name: random``, a search knob) leaves the list and its sidecar byte-identical and DVC retrains
    nothing; ``metrics/select.json`` reports them all.
    """
    config = dataclasses.asdict(params)
    wanted = set(reads)
    for dotted in (*EXECUTION_ONLY, *REPORT_ONLY, *(f for f in STRATEGY_ONLY if f not in wanted)):
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return config

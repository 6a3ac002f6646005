"""Typed, validated view of the ``source_select`` section of params.yaml.

The speech keys mirror ``select`` (strategy, budget, quotas, penalties, diversity, coverage, quality gate) and
are handed to the pair-level machinery as a :class:`~curator.selection.params.SelectParams`
(:meth:`SourceSelectParams.select_params`); the rest is what only sources have: caps per speaker, corpus and
language, effective-bandwidth bands, the hardness cvar ranks sources by, the ``list`` selector and the noise
filters.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from curator.config import ConfigError, check_range, register_section
from curator.selection.params import (
    CoverageParams,
    DiversityParams,
    PenaltyParams,
    QualityGateParams,
    SelectParams,
)

LIST_SELECTOR = "list"
"""``source_select.name: list``: the sources named in ``source_select.list.path``, in list order."""
LISTS_DIR = "data/lists"
"""Where id lists belong: a DVC dependency of the source_select and cmp_select stages, so editing a list there
reruns the selection (a list elsewhere works too, with a warning that DVC does not see its edits)."""


def tracked_list(path: str | os.PathLike[str]) -> bool:
    """Whether an id list lies under :data:`LISTS_DIR` (of the working directory, where DVC runs the stage)."""
    return Path(path).resolve().is_relative_to(Path(LISTS_DIR).resolve())
SLICE_COLUMNS = ("corpus", "language", "band", "sr")
"""Columns a source-level slice key may name (``band``: the effective-bandwidth band)."""


@dataclass
class CapParams:
    """Upper bounds that hold exactly on the selected speech (``None`` = no cap).

    ``max_hours_per_speaker`` bounds the hours of every (corpus, speaker); ``max_share_per_corpus`` and
    ``max_share_per_language`` bound each value's share of the selected hours.
    """

    max_hours_per_speaker: float | None = None
    max_share_per_corpus: float | None = None
    max_share_per_language: float | None = None

    def __post_init__(self) -> None:
        check_range("source_select.caps.max_hours_per_speaker", self.max_hours_per_speaker, lo=0.0, lo_open=True)
        check_range("source_select.caps.max_share_per_corpus", self.max_share_per_corpus, lo=0.0, hi=1.0,
                    lo_open=True)
        check_range("source_select.caps.max_share_per_language", self.max_share_per_language, lo=0.0, hi=1.0,
                    lo_open=True)

    def shares(self) -> dict[str, float]:
        """Share caps by manifest column (those set)."""
        out = {"corpus": self.max_share_per_corpus, "language": self.max_share_per_language}
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class ListParams:
    """The ``list`` selector's input: one id a line, official ``uid fs path`` lines, or a CSV with ``source_id``."""

    path: str | None = None


@dataclass
class NoiseFilterParams:
    """Filters on noise and wind-noise sources (every source of those kinds and RIRs that passes is kept)."""

    drop_with_speech: bool = True


@register_section("source_select")
@dataclass
class SourceSelectParams:
    name: str
    K_hours: float
    alpha: float = 0.10
    seed: int = 0
    slice_key: list[str] = field(default_factory=lambda: ["corpus"])
    quotas: dict[str, dict[str, float]] = field(default_factory=dict)
    penalties: PenaltyParams = field(default_factory=PenaltyParams)
    diversity: DiversityParams = field(default_factory=DiversityParams)
    coverage: CoverageParams = field(default_factory=CoverageParams)
    quality_gate: QualityGateParams = field(default_factory=QualityGateParams)
    mos_threshold: QualityGateParams = field(default_factory=lambda: QualityGateParams(min_score=3.0))
    max_invalid_fraction: float = 0.01
    threads: int = 0
    caps: CapParams = field(default_factory=CapParams)
    bandwidth_edges_hz: list[float] = field(default_factory=lambda: [3500.0, 7000.0, 10500.0, 15000.0, 20000.0])
    hardness: Literal["pairs", "none"] = "pairs"
    list: ListParams = field(default_factory=ListParams)
    noise: NoiseFilterParams = field(default_factory=NoiseFilterParams)

    def __post_init__(self) -> None:
        bad = [c for c in self.slice_key if c not in SLICE_COLUMNS]
        if bad:
            raise ConfigError(f"'source_select.slice_key' names {bad[0]!r}; source slices are made of: "
                              f"{', '.join(SLICE_COLUMNS)}")
        edges = self.bandwidth_edges_hz
        if any(not math.isfinite(e) or e <= 0 for e in edges) or sorted(set(edges)) != list(edges):
            raise ConfigError(f"'source_select.bandwidth_edges_hz' = {edges} must be positive and strictly increasing")
        if self.name == LIST_SELECTOR and not self.list.path:
            raise ConfigError("'source_select.list.path' must name a file of source ids when source_select.name is list")
        if self.name == "cvar" and self.hardness == "none":
            raise ConfigError("'source_select.name' = cvar ranks by hardness: set source_select.hardness: pairs "
                              "(or pick random, coverage_only, mos_threshold or list)")
        self.select_params()  # the pair-level checks (budget, quotas, gates), under this section's name

    def select_params(self) -> SelectParams:
        """The speech keys as a :class:`SelectParams` for the shared selection machinery (``list`` runs none of
        it, so it is given a registered strategy's name)."""
        keys = {f.name for f in dataclasses.fields(SelectParams)}
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in keys}
        if kwargs["name"] == LIST_SELECTOR:
            kwargs["name"] = "random"
        try:
            return SelectParams(**kwargs)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("'select.", "'source_select.").replace(" select.", " source_select.")
                              ) from exc

    def band_labels(self) -> list[str]:
        """Band names from the edges: ``0-3.5k``, ``3.5k-7k``, ..., ``20k+`` (kHz; ``unknown`` when unmeasured)."""
        khz = [f"{e / 1000:g}k" for e in self.bandwidth_edges_hz]
        return [f"0-{khz[0]}", *(f"{a}-{b}" for a, b in zip(khz, khz[1:], strict=False)), f"{khz[-1]}+"] if khz \
            else ["all"]


def strategy_reads(name: str) -> tuple[str, ...]:
    """The strategy-only params (``selection.params.STRATEGY_ONLY``) a source selection by ``name`` reads, which
    its sidecar records: the list selector its list; every other strategy its pair-level selector's
    (``BaseSelector.reads``) and ``hardness``, which it computes whatever it ranks by (its fallback warnings are
    in the sidecar)."""
    if name == LIST_SELECTOR:
        return ("list",)
    from curator.selection.registry import SELECTORS

    return (*SELECTORS.get(name).reads, "hardness")

"""The ``data`` section of params.yaml and every path derived from it (the one source of truth).

``data.dataset`` names the dataset; its folder, manifests and truth file are derived here and nowhere else.
``dvc.yaml`` spells the same paths with ``${data.root}`` and ``${data.dataset}``, and a test checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curator.audio import SAMPLE_RATES
from curator.config import ConfigError, check_range, register_section

SPLITS = ("train", "dev", "test")
CURATION_LEVELS = ("pairs", "sources")
"""``curation.level``: select simulated pairs (score -> select), or source recordings and simulate the training
pairs from them (sources -> source_score -> source_select -> source_simulate)."""
DATASET_NAMES = ("mini", "urgent2026", "folder")
"""Datasets a recipe exists for (``curator.datasets.recipes``); a test keeps this in step with the registry."""
REFERENCE_TRUTH = "reference_truth.csv"
"""Ground truth of planted reference defects, written by the mini dataset (header only elsewhere)."""


@dataclass
class Filters:
    """Global filters honoured by scoring, the probe and selection; empty lists mean "all"."""

    languages: list[str] = field(default_factory=list)
    sample_rates: list[int] = field(default_factory=list)
    distortions: list[str] = field(default_factory=list)
    augmentations: list[str] = field(default_factory=list)
    """Per-augmentation flags (``contract/flags.py``): keep rows with any of them, whatever else was applied."""
    max_hours: float | None = None

    def __post_init__(self) -> None:
        bad = [sr for sr in self.sample_rates if sr not in SAMPLE_RATES]
        if bad:
            raise ConfigError(
                f"'data.filters.sample_rates' has {bad}; valid: {', '.join(map(str, SAMPLE_RATES))}"
            )
        for name in ("languages", "distortions", "augmentations"):
            values = getattr(self, name)
            blank = [v for v in values if not v.strip() or v != v.strip()]
            if blank:
                raise ConfigError(f"'data.filters.{name}' has a blank or space-padded value {blank[0]!r}")
        for name in ("languages", "sample_rates", "distortions", "augmentations"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ConfigError(f"'data.filters.{name}' repeats a value: {values}")
        check_range("data.filters.max_hours", self.max_hours, lo=0.0, lo_open=True)


@register_section("data")
@dataclass
class DataParams:
    """The ``data`` section: which dataset, where data lives, global filters."""

    dataset: str
    root: str = "data"
    filters: Filters = field(default_factory=Filters)

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_NAMES:
            raise ConfigError(f"'data.dataset' = '{self.dataset}' is not valid; choose one of: "
                              f"{', '.join(DATASET_NAMES)}")

    def manifest_path(self, split: str) -> Path:
        """``<root>/manifests/<dataset>/<split>.jsonl``: where the manifest stage writes ``split``."""
        if split not in SPLITS:
            raise ValueError(f"split '{split}' is not one of {', '.join(SPLITS)}")
        return Path(self.root) / "manifests" / self.dataset / f"{split}.jsonl"

    @property
    def external_dir(self) -> Path:
        """``<root>/external/<dataset>``: the dataset's audio and lists as ``prepare`` leaves them."""
        return Path(self.root) / "external" / self.dataset

    @property
    def sources_manifest_path(self) -> Path:
        """``<root>/manifests/<dataset>/sources.jsonl``: the train split's source recordings (``contract/sources.py``)."""
        return Path(self.root) / "manifests" / self.dataset / "sources.jsonl"

    @property
    def source_scores_path(self) -> Path:
        """``<root>/scores/source_scores.parquet``: per-source scores (the source_score stage)."""
        return Path(self.root) / "scores" / "source_scores.parquet"

    @property
    def source_selection_path(self) -> Path:
        """``<root>/curated/source_selection/selected_sources.csv``: the source_select stage's list."""
        return Path(self.root) / "curated" / "source_selection" / "selected_sources.csv"

    def curated_dir(self, level: str) -> Path:
        """``<root>/curated/<level>``: what training reads at that curation level (``curated_train.csv``, and for
        ``sources`` the pairs simulated from the selection with their manifest)."""
        if level not in CURATION_LEVELS:
            raise ValueError(f"curation level '{level}' is not one of {', '.join(CURATION_LEVELS)}")
        return Path(self.root) / "curated" / level

    def curated_list(self, level: str) -> Path:
        """``<root>/curated/<level>/curated_train.csv``."""
        return self.curated_dir(level) / "curated_train.csv"

    @property
    def truth_path(self) -> Path:
        """The dataset's reference ground truth (``reference_truth.csv``)."""
        return self.external_dir / REFERENCE_TRUTH


@register_section("curation")
@dataclass
class CurationParams:
    """The ``curation`` section: at which level the training data is chosen."""

    level: str = "pairs"

    def __post_init__(self) -> None:
        if self.level not in CURATION_LEVELS:
            raise ConfigError(f"'curation.level' = '{self.level}' is not valid; choose one of: "
                              f"{', '.join(CURATION_LEVELS)}")

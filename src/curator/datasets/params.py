"""Typed, validated views of the ``data`` section of params.yaml (the global routing and filters).

The dataset-specific sections (``dataset``, ``simulation``) are defined beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curator.audio import SAMPLE_RATES
from curator.config import ConfigError, check_range, register_section


@dataclass
class Filters:
    """Global filters honoured by scoring and selection; empty lists mean "all"."""

    languages: list[str] = field(default_factory=list)
    sample_rates: list[int] = field(default_factory=list)
    distortions: list[str] = field(default_factory=list)
    max_hours: float | None = None

    def __post_init__(self) -> None:
        bad = [sr for sr in self.sample_rates if sr not in SAMPLE_RATES]
        if bad:
            raise ConfigError(
                f"'data.filters.sample_rates' has {bad}; valid: {', '.join(map(str, SAMPLE_RATES))}"
            )
        check_range("data.filters.max_hours", self.max_hours, lo=0.0, lo_open=True)


@dataclass
class Manifests:
    train: str
    dev: str
    test: str


@register_section("data")
@dataclass
class DataParams:
    dataset: str
    root: str
    manifests: Manifests
    filters: Filters = field(default_factory=Filters)

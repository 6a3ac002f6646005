"""The ``compare`` section: the selector x budget x seed matrix that tests which curated subset trains better."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curator.config import ConfigError, check_choice, check_range, read_entry, register_section
from curator.contract.flags import FLAGS_COLUMN
from curator.evaluation.params import SLICE_COLUMNS

SELECT_PREFIX = "select."
SOURCE_PREFIX = "source_select."
LEVEL_KEY = "curation.level"
SKIPPED_FILE = "skipped.json"
"""Written instead of a model / per-utterance metrics by a cell that cannot run (a source-level variant on a dataset
that lists no sources); the report lists the variant as not run, with the reason."""
VARIANT_PREFIXES = (SELECT_PREFIX, SOURCE_PREFIX, f"{LEVEL_KEY}=")
"""Variant overrides may only change the selection (``select``, or ``source_select`` with
``curation.level=sources``): every variant shares scores, simulation, model and recipe."""


@dataclass
class ProfileParams:
    """Overrides applied to every variant's training and evaluation (the matrix's compute profile)."""

    train: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for item in [*self.train, *self.eval]:
            if "=" not in item:
                raise ConfigError(f"'compare.profiles' override '{item}' must look like key.path=value")


@register_section("compare")
@dataclass
class CompareParams:
    """Selectors (variants), budgets (fractions of the pool's hours), training seeds and what to report."""

    variants: dict[str, list[str]]
    budgets: list[float]
    seeds: list[int]
    baseline: str
    gate_pairs: dict[str, str] = field(default_factory=dict)
    pairs: dict[str, str] = field(default_factory=dict)
    """Other direct comparisons, ``{variant: the variant it is compared with}`` (paired, at equal hours)."""
    profile: str = "mini"
    profiles: dict[str, ProfileParams] = field(default_factory=dict)
    headline_metrics: list[str] = field(default_factory=lambda: ["pesq", "estoi", "si_sdr"])
    slices: list[str] = field(default_factory=lambda: ["distortion", FLAGS_COLUMN])
    """Per-utterance columns every comparison against the baseline is split by (``augmentations``: one
    overlapping slice per flag); every headline metric is in compare.json."""
    slice_metrics: list[str] | None = None
    """Headline metrics the report's per-slice tables show (None: the first headline metric)."""

    def __post_init__(self) -> None:
        if not self.variants:
            raise ConfigError("'compare.variants' must name at least one variant, e.g. random: [select.name=random]")
        for name, overrides in self.variants.items():
            if "/" in name or name.startswith("."):
                raise ConfigError(f"'compare.variants.{name}': a variant name must be a plain folder name")
            for item in overrides:
                if not item.startswith(VARIANT_PREFIXES) or "=" not in item:
                    raise ConfigError(f"'compare.variants.{name}' override '{item}' must look like select.key=value, "
                                      "source_select.key=value or curation.level=sources (variants differ only in "
                                      "their selection)")
            levels = [i.split("=", 1)[1] for i in overrides if i.startswith(f"{LEVEL_KEY}=")]
            if any(v not in ("pairs", "sources") for v in levels) or len(levels) > 1:
                raise ConfigError(f"'compare.variants.{name}': curation.level must be given once, as pairs or sources")
            level = levels[0] if levels else "pairs"
            wrong = SELECT_PREFIX if level == "sources" else SOURCE_PREFIX
            stray = [i for i in overrides if i.startswith(wrong)]
            if stray:
                raise ConfigError(f"'compare.variants.{name}': {stray[0]!r} has no effect at curation.level={level} "
                                  f"(a {level} variant is chosen by {'source_select' if level == 'sources' else 'select'}"
                                  " overrides)")
        check_choice("compare.baseline", self.baseline, self.variants)
        for section, pairs in (("gate_pairs", self.gate_pairs), ("pairs", self.pairs)):
            for a, b in pairs.items():
                check_choice(f"compare.{section}", a, self.variants)
                check_choice(f"compare.{section}.{a}", b, self.variants)
        if not self.budgets or len(set(self.budgets)) != len(self.budgets):
            raise ConfigError(f"'compare.budgets' must list distinct fractions of the pool, got {self.budgets}")
        for b in self.budgets:
            check_range("compare.budgets", b, lo=0.0, hi=1.0, lo_open=True)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"'compare.seeds' must list distinct training seeds, got {self.seeds}")
        check_choice("compare.profile", self.profile, self.profiles)
        if not self.headline_metrics:
            raise ConfigError("'compare.headline_metrics' must name at least one metric")
        for column in self.slices:
            check_choice("compare.slices", column, SLICE_COLUMNS)
        for metric in self.slice_metrics or ():
            check_choice("compare.slice_metrics", metric, self.headline_metrics)

    def variant_overrides(self, name: str) -> list[str]:
        """The ``select`` overrides of one variant (recorded as reading that entry only)."""
        try:
            return list(read_entry(self, "variants", name))
        except KeyError:
            check_choice("variant", name, object.__getattribute__(self, "variants"))
            raise

    def variant_level(self, name: str) -> str:
        """``sources`` when the variant sets ``curation.level=sources``, else ``pairs``."""
        for item in self.variant_overrides(name):
            if item.startswith(f"{LEVEL_KEY}="):
                return item.split("=", 1)[1]
        return "pairs"

    def active_profile(self) -> ProfileParams:
        """The profile named by ``compare.profile`` (recorded as reading that entry only)."""
        return read_entry(self, "profiles", self.profile)


def budget_tag(budget: float) -> str:
    """How a budget appears in paths: ``str(float)``, as DVC renders ``${item.budget}`` (0.25 -> "0.25")."""
    return str(float(budget))


def selection_id(variant: str, budget: float) -> str:
    return f"{variant}_k{budget_tag(budget)}"


def run_id(variant: str, budget: float, seed: int) -> str:
    return f"{selection_id(variant, budget)}_s{seed}"


def compare_dir(root: str) -> Path:
    """``<data.root>/compare``: every cell's curated list, training curves and per-utterance eval."""
    return Path(root) / "compare"


def select_dir(root: str, variant: str, budget: float) -> Path:
    """A cell's training input, exactly what its ``cmp_train`` stages depend on: the curated list and its sidecar
    (a source-level cell: the selected sources and the pairs simulated from them). Nothing that only reports
    lives here (:func:`select_report_dir`), so a sweep that leaves a list byte-identical retrains nothing."""
    return compare_dir(root) / "select" / selection_id(variant, budget)


def select_report_dir(root: str, variant: str, budget: float) -> Path:
    """A cell's selection report (``select.json``, plots; a source-level cell's ``simulate.json`` too), which no
    training reads: it holds figures of params the list does not depend on (``select.alpha``'s tail figures
    under any strategy)."""
    return compare_dir(root) / "select_report" / selection_id(variant, budget)


def cell_list(root: str, variant: str, budget: float, level: str) -> Path:
    """The curated list a cell trains on: the pair selection's ``curated.csv``, or for a source-level variant the
    list of the pairs simulated from its selected sources (``sources/curated_train.csv``)."""
    cell = select_dir(root, variant, budget)
    return cell / "sources" / "curated_train.csv" if level == "sources" else cell / "curated.csv"


def eval_dir(root: str, variant: str, budget: float, seed: int) -> Path:
    return compare_dir(root) / "eval" / run_id(variant, budget, seed)

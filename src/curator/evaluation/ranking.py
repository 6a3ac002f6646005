"""The URGENT ranking scheme for comparing systems.

Mean of each metric over the set -> dense rank per metric (1 = best; ties share a rank, "1223") -> average rank
within each metric category -> average across categories. Lower is better.

The published pseudocode (URGENT 2025 rules, 2026 Track 1 "Overall ranking method") wraps steps 3 and 4 in
``get_ranking``: the category averages are re-ranked (dense) and the overall score is the dense rank of the
average of those category ranks. Its worked example, however, lists plain averages (category 4.8, overall
4.200) and per-metric ranks with gaps ("1224"). Both are reported: ``category/<c>`` and ``overall`` are the
averages of the worked example, ``category_rank/<c>`` and ``overall_rank`` the pseudocode's re-ranking; rows
are sorted by ``overall_rank`` then ``overall``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from curator.evaluation.metrics import CATEGORIES, METRICS

OVERALL = "overall"
OVERALL_RANK = "overall_rank"

# The 2026 Track 1 objective metrics by category (POLQA, scored on the blind test only, is left out).
OFFICIAL_2026: dict[str, tuple[str, ...]] = {
    "non_intrusive": ("dnsmos_ovrl", "nisqa", "utmos", "scoreq"),
    "intrusive": ("pesq", "estoi"),
    "task_independent": ("speech_bert_score", "lps"),
    "task_dependent": ("spk_sim", "emo_sim", "lid_acc", "cacc"),
}
# Directions of official metrics that are not registered here (no implementation to read them from); every
# 2026 metric is registered now (EmoSim in metrics/task_dependent.py), so this is empty.
UNREGISTERED_HIGHER_IS_BETTER: dict[str, bool] = {}


@dataclass(frozen=True)
class Ranking:
    """An URGENT ranking: the table and, per category, the official metrics it had no means for."""

    table: pd.DataFrame
    missing: dict[str, tuple[str, ...]]

    @property
    def complete(self) -> bool:
        return not self.missing


def dense_rank(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """1 for the best value, ties share a rank, the next distinct value gets the next integer; NaN stays NaN."""
    return values.rank(method="dense", ascending=not higher_is_better)


def urgent_rank(means: pd.DataFrame, categories: Mapping[str, str],
                higher_is_better: Mapping[str, bool]) -> pd.DataFrame:
    """Rank systems (rows of ``means``) by metric means (columns), the URGENT way.

    Returns one row per system with columns ``rank/<metric>``, ``category/<category>`` (average rank),
    ``category_rank/<category>`` (its dense rank), ``overall`` (average of the category averages) and
    ``overall_rank`` (dense rank of the average category rank). A NaN mean is left out of its category.
    """
    unknown = [m for m in means.columns if m not in categories or m not in higher_is_better]
    if unknown:
        raise ValueError(f"urgent_rank: no category or direction for metric(s) {', '.join(unknown)}")
    ranks = pd.DataFrame({m: dense_rank(means[m], higher_is_better[m]) for m in means.columns}, index=means.index)
    present = [c for c in CATEGORIES if any(categories[m] == c for m in means.columns)]
    present += [c for c in dict.fromkeys(categories[m] for m in means.columns) if c not in present]
    cat_means = pd.DataFrame({c: ranks[[m for m in means.columns if categories[m] == c]].mean(axis=1)
                              for c in present}, index=means.index)
    cat_ranks = pd.DataFrame({c: dense_rank(cat_means[c], higher_is_better=False) for c in present},
                             index=means.index)
    out = pd.concat([ranks.add_prefix("rank/"), cat_means.add_prefix("category/"),
                     cat_ranks.add_prefix("category_rank/")], axis=1)
    out[OVERALL] = cat_means.mean(axis=1)
    out[OVERALL_RANK] = dense_rank(cat_ranks.mean(axis=1), higher_is_better=False)
    return out.sort_values([OVERALL_RANK, OVERALL], kind="stable")


def _direction(name: str) -> bool:
    if name in METRICS:
        return METRICS.get(name).higher_is_better
    return UNREGISTERED_HIGHER_IS_BETTER[name]


def official_rank(means: pd.DataFrame, metric_set: Mapping[str, Sequence[str]] = OFFICIAL_2026) -> Ranking:
    """The URGENT ranking on ``metric_set`` only (default: the 2026 objective metrics).

    Columns outside the set (SI-SDR, SDR, ...) are ignored here; report them beside the table. An official
    metric without a column, or whose column is all NaN, is listed in ``Ranking.missing`` under its category
    (a category with none of its metrics is listed whole and drops out of the averages).
    """
    categories = {m: c for c, ms in metric_set.items() for m in ms}
    used = [m for m in categories if m in means.columns and means[m].notna().any()]
    missing = {c: tuple(m for m in ms if m not in used) for c, ms in metric_set.items()}
    missing = {c: ms for c, ms in missing.items() if ms}
    if not used:
        raise ValueError(f"official_rank: none of the official metrics ({', '.join(categories)}) has means")
    table = urgent_rank(means[used], categories, {m: _direction(m) for m in used})
    return Ranking(table, missing)


def rank_systems(means: pd.DataFrame) -> pd.DataFrame:
    """:func:`urgent_rank` over every column of ``means``, categories and directions from the metrics registry.

    This is the project's extended ranking (it counts extras such as SI-SDR); :func:`official_rank` is the
    challenge's.
    """
    metrics = [METRICS.get(m) for m in means.columns]
    return urgent_rank(means, {m.name: m.category for m in metrics},
                       {m.name: m.higher_is_better for m in metrics})

"""The URGENT ranking scheme for comparing systems.

mean of each metric over the set -> dense rank per metric (1 = best; ties share a rank) -> average rank within
each metric category -> average across categories. Lower overall is better.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from curator.evaluation.metrics import METRICS

OVERALL = "overall"


def urgent_rank(means: pd.DataFrame, categories: Mapping[str, str],
                higher_is_better: Mapping[str, bool]) -> pd.DataFrame:
    """Rank systems (rows of ``means``) by metric means (columns), the URGENT way.

    Returns one row per system with columns ``rank/<metric>``, ``category/<category>`` and ``overall``,
    sorted by ``overall``. A NaN mean is left out of its category's average.
    """
    unknown = [m for m in means.columns if m not in categories or m not in higher_is_better]
    if unknown:
        raise ValueError(f"urgent_rank: no category or direction for metric(s) {', '.join(unknown)}")
    ranks = pd.DataFrame({
        m: means[m].rank(method="dense", ascending=not higher_is_better[m]) for m in means.columns
    }, index=means.index)
    by_cat = {c: [m for m in means.columns if categories[m] == c] for c in dict.fromkeys(categories[m]
                                                                                      for m in means.columns)}
    cat_ranks = pd.DataFrame({c: ranks[ms].mean(axis=1) for c, ms in by_cat.items()}, index=means.index)
    out = pd.concat([ranks.add_prefix("rank/"), cat_ranks.add_prefix("category/")], axis=1)
    out[OVERALL] = cat_ranks.mean(axis=1)
    return out.sort_values(OVERALL, kind="stable")


def rank_systems(means: pd.DataFrame) -> pd.DataFrame:
    """:func:`urgent_rank` with each metric's category and direction taken from the metrics registry."""
    metrics = [METRICS.get(m) for m in means.columns]
    return urgent_rank(means, {m.name: m.category for m in metrics},
                       {m.name: m.higher_is_better for m in metrics})

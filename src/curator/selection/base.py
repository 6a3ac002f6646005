"""The selector base class: strategies only rank; budget, filters, quotas, gate and diversity are shared.

A strategy implements :meth:`BaseSelector.rank` (a utility in [0, 1] per row, higher = take first, comparable
across slices) and may narrow the eligible rows with :meth:`BaseSelector.restrict`. Everything else, from
reading the scores to the quota report, is the same for every strategy, so comparisons between strategies
differ only in the ranking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from curator.contract.data import Filters
from curator.selection.fill import HOURS_EPS, SELECTED, Fill, greedy_fill
from curator.selection.params import SelectParams
from curator.selection.pool import Pool, PoolError, ScoresSource, load_pool
from curator.selection.quotas import QuotaPlan, plan_quotas


@dataclass
class Ranking:
    """A strategy's answer: per-row utility in [0, 1], tie-break (lower first) and why a row is wanted."""

    utility: np.ndarray
    tiebreak: np.ndarray
    reason: np.ndarray
    reasons: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Selection:
    """Everything a selection run produced, for the CSV, the sidecar, the metrics and the plots."""

    pool: Pool
    params: SelectParams
    eligible: np.ndarray
    gated: np.ndarray
    plan: QuotaPlan
    ranking: Ranking
    fill: Fill

    @property
    def selected(self) -> np.ndarray:
        return self.fill.state == SELECTED

    @property
    def in_quota(self) -> np.ndarray:
        """Selected rows within their slice's feasible quota (in selection order); the rest overflowed it."""
        rows = np.flatnonzero(self.selected)
        code = self.pool.slice_code[rows]
        rows = rows[np.lexsort((self.fill.order[rows], code))]
        code = self.pool.slice_code[rows]
        cum = np.cumsum(self.pool.hours[rows])
        start = np.concatenate(([0.0], cum))[np.searchsorted(code, code, side="left")]
        out = np.zeros(self.pool.n, dtype=bool)
        out[rows] = cum - start <= self.plan.feasible[code] + HOURS_EPS
        return out

    def frame(self) -> pd.DataFrame:
        """The selected rows in selection order: utt_id, hours, slice, reason, order, in_quota, then carried columns."""
        rows = np.flatnonzero(self.selected)
        rows = rows[np.argsort(self.fill.order[rows], kind="stable")]
        names = np.asarray(self.pool.slice_names, dtype=object)
        reasons = np.asarray(self.ranking.reasons, dtype=object)
        out = pd.DataFrame({
            "utt_id": self.pool.utt_id[rows],
            "hours": self.pool.hours[rows],
            "slice": names[self.pool.slice_code[rows]],
            "reason": reasons[self.ranking.reason[rows]],
            "order": self.fill.order[rows],
            "in_quota": self.in_quota[rows],
        })
        carried = self.pool.columns.take(pa.array(rows)).to_pandas()
        return pd.concat([out, carried], axis=1)


class BaseSelector(ABC):
    """Pick a subset of the scores table under ``select`` params (see the module docstring)."""


    def __init__(self, params: SelectParams, filters: Filters | None = None,
                 quotas: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.params = params
        self.filters = filters
        self.quotas = dict(params.quotas if quotas is None else quotas)

    @abstractmethod
    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        """Utility per row (only ``eligible`` rows are ever read); higher utilities are offered first."""

    def restrict(self, pool: Pool) -> np.ndarray:
        """Rows this strategy may pick at all (default: every row)."""
        return np.ones(pool.n, dtype=bool)

    def load(self, source: ScoresSource) -> Pool:
        """Read and validate the scores (Parquet path, Arrow table or DataFrame) into a pool."""
        p = self.params
        return load_pool(source, p.slice_key, self.filters, quality_columns=p.quality_columns(),
                         center=p.diversity.center,
                         max_invalid_fraction=p.max_invalid_fraction, seed=p.seed)

    def run(self, pool: Pool) -> Selection:
        """Gate, plan the quotas, rank and fill: the whole selection on an already loaded pool."""
        p = self.params
        gated = np.zeros(pool.n, dtype=bool)
        gate = p.quality_gate
        if gate.min_score is not None:
            gated = ~pool.speech_free & (pool.quality[gate.column] < gate.min_score)
        eligible = ~gated & self.restrict(pool)
        if not eligible.any():
            raise PoolError(
                f"no eligible rows in '{pool.source}': the quality gate removed {int(gated.sum())} and strategy "
                f"'{p.name}' the rest of {pool.n}; lower select.quality_gate.min_score or select.mos_threshold.min_score"
            )
        plan = plan_quotas(pool, eligible, p.K_hours, self.quotas)
        ranking = self.rank(pool, eligible)
        fill = greedy_fill(ranking.utility, ranking.tiebreak, eligible, pool.hours, pool.slice_code, plan.share,
                           p.penalties.quota_violation, plan.budget, pool.emb, p.diversity, p.seed)
        return Selection(pool=pool, params=p, eligible=eligible, gated=gated, plan=plan, ranking=ranking,
                         fill=fill)

    def select(self, df_scores: pd.DataFrame | ScoresSource) -> pd.DataFrame:
        """The spec's API: scores in, selected rows out (see :meth:`Selection.frame`)."""
        return self.run(self.load(df_scores)).frame()

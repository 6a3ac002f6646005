"""The selector base class: strategies only rank; budget, filters, quotas, gate and diversity are shared.

A strategy implements :meth:`BaseSelector.rank` (a utility in [0, 1] per row, higher = take first, comparable
across slices) and may narrow the eligible rows with :meth:`BaseSelector.restrict`. Everything else, from
reading the scores to the quota report, is the same for every strategy, so comparisons between strategies
differ only in the ranking.

Inputs that can only give a useless selection are errors naming the knob to turn (no eligible row; only
speech-free rows left after the gate; a budget below the shortest utterance). Conditions that still give a
usable selection are :class:`SelectionWarning` s: logged, listed in the sidecar and counted by code in
``metrics/select.json`` (quota values no row has, with a did-you-mean; a budget clipped to the pool; a greedy
that stopped well short of its budget because the next utterance did not fit; rows the exact diversity
check had to drop).
"""

from __future__ import annotations

import difflib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from curator.contract.data import Filters
from curator.selection import workers
from curator.selection.diversity import index_cells
from curator.selection.fill import HOURS_EPS, SELECTED, Fill, greedy_fill
from curator.selection.params import SelectParams
from curator.selection.pool import Pool, PoolError, ScoresSource, load_pool
from curator.selection.quotas import QuotaPlan, flag_quota_names, plan_quotas

log = logging.getLogger("curator.selection")

UNUSED_BUDGET_WARN_FRACTION = 0.01
"""Warn when the greedy stops with more than this share of the budget unused while rows remain."""


@dataclass
class Ranking:
    """A strategy's answer: per-row utility in [0, 1], tie-break (lower first) and why a row is wanted."""

    utility: np.ndarray
    tiebreak: np.ndarray
    reason: np.ndarray
    reasons: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SelectionWarning:
    """A condition the selection survived but a person should see: a code (counted in select.json) and why."""

    code: str
    message: str
    count: int = 1


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
    warnings: list[SelectionWarning] = field(default_factory=list)

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

    reads: ClassVar[tuple[str, ...]] = ()
    """The strategy-only params (``params.STRATEGY_ONLY``: ``alpha``, ``coverage``, ``mos_threshold``) this
    strategy reads. The sidecar records only these of them (``params.recorded_config``), so a sweep of another
    strategy's knob leaves this one's list and sidecar byte-identical and retrains nothing
    (``tests/selection/test_recorded_config.py`` checks each declaration against the selection itself)."""

    def __init__(self, params: SelectParams, filters: Filters | None = None,
                 quotas: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.params = params
        self.filters = filters
        self.quotas = dict(params.quotas if quotas is None else quotas)
        self.limit: Callable[[Pool, np.ndarray, Ranking], np.ndarray] | None = None
        """Optional hook run after ranking: narrows the eligible rows by the ranking (source-level caps keep each
        speaker's best rows, ``selection/sources``); the quotas are then planned on what it leaves."""

    @abstractmethod
    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        """Utility per row (only ``eligible`` rows are ever read); higher utilities are offered first."""

    def restrict(self, pool: Pool) -> np.ndarray:
        """Rows this strategy may pick at all (default: every row)."""
        return np.ones(pool.n, dtype=bool)

    def load(self, source: ScoresSource) -> Pool:
        """Read and validate the scores (Parquet path, Arrow table or DataFrame) into a pool."""
        p = self.params
        with threadpool_limits(limits=1), workers.threads(p.threads), workers.small_pages():
            return load_pool(source, p.slice_key, self.filters, quality_columns=p.quality_columns(),
                             center=p.diversity.center,
                             max_invalid_fraction=p.max_invalid_fraction, seed=p.seed,
                             flag_slices=flag_quota_names(self.quotas))

    def run(self, pool: Pool, while_checking: Callable[[Selection], None] | None = None) -> Selection:
        """Gate, plan the quotas, rank and fill: the whole selection on an already loaded pool.

        The work runs in fixed blocks on ``select.threads`` threads, each block's BLAS and OpenMP (faiss) on one
        thread (``workers.py``): the bytes do not depend on the thread count (see ``SelectParams.threads``).
        ``while_checking(provisional)`` runs while the exact diversity check runs (``fill.greedy_fill``): the
        provisional selection has no check and no warnings yet, and is stale if the returned one has
        ``fill.repaired`` rows.
        """
        with threadpool_limits(limits=1), workers.threads(self.params.threads), workers.small_pages():
            return self._run(pool, while_checking)

    def _run(self, pool: Pool, while_checking: Callable[[Selection], None] | None = None) -> Selection:
        p = self.params
        gated = np.zeros(pool.n, dtype=bool)
        gate = p.quality_gate
        if gate.min_score is not None:
            gated = ~pool.speech_free & (pool.quality[gate.column] < gate.min_score)
        eligible = ~gated & self.restrict(pool)
        if not eligible.any():
            rule = f" ({gate.column} < {gate.min_score:g})" if gate.min_score is not None else ""
            raise PoolError(
                f"no eligible rows in '{pool.source}' ({pool.n} rows): the quality gate{rule} removed "
                f"{int(gated.sum())}, strategy '{p.name}' the other {int((~gated).sum())}; lower "
                "select.quality_gate.min_score or select.mos_threshold.min_score"
            )
        if (~pool.speech_free).any() and not (eligible & ~pool.speech_free).any():
            raise PoolError(
                f"no speech row of '{pool.source}' is eligible: the quality gate removed {int(gated.sum())} and "
                f"strategy '{p.name}' the rest; only the {int(pool.speech_free.sum())} speech-free rows are left, "
                "and a selection of them alone trains nothing; lower select.quality_gate.min_score or "
                "select.mos_threshold.min_score"
            )
        shortest = float(pool.hours[eligible].min())
        if p.K_hours < shortest:
            raise PoolError(
                f"select.K_hours = {p.K_hours:g} h is below the shortest eligible utterance ({shortest:.6g} h) of "
                f"'{pool.source}': nothing fits; raise select.K_hours"
            )
        # the diversity index's cells depend only on the eligible rows: they train beside the ranking (both
        # spread their blocks over the same threads), unless a limit narrows the rows after the ranking
        trained = None
        if p.diversity.enabled and self.limit is None:
            side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="select-cells")
            trained = side.submit(index_cells, pool.emb, np.flatnonzero(eligible), p.diversity, p.seed)
            side.shutdown(wait=False)
        ranking = self.rank(pool, eligible)
        if self.limit is not None:
            eligible = eligible & self.limit(pool, eligible, ranking)
        plan = plan_quotas(pool, eligible, p.K_hours, self.quotas)
        cells = trained.result() if trained is not None else None

        def provisional(fill: Fill) -> None:
            while_checking(Selection(pool=pool, params=p, eligible=eligible, gated=gated, plan=plan,
                                     ranking=ranking, fill=fill))

        fill = greedy_fill(ranking.utility, ranking.tiebreak, eligible, pool.hours, pool.slice_code, plan.share,
                           p.penalties.quota_violation, plan.budget, pool.emb, p.diversity, p.seed,
                           supply=plan.supply, cells=cells,
                           while_checking=provisional if while_checking is not None else None)
        sel = Selection(pool=pool, params=p, eligible=eligible, gated=gated, plan=plan, ranking=ranking, fill=fill)
        sel.warnings = selection_warnings(sel, self.quotas)
        for w in sel.warnings:
            log.warning("%s", w.message)
        return sel

    def select(self, df_scores: pd.DataFrame | ScoresSource) -> pd.DataFrame:
        """The spec's API: scores in, selected rows out (see :meth:`Selection.frame`)."""
        return self.run(self.load(df_scores)).frame()


def selection_warnings(sel: Selection, quotas: Mapping[str, Mapping[str, float]]) -> list[SelectionWarning]:
    """Conditions worth a person's attention that still give a usable selection (see the module docstring)."""
    pool, plan, fill = sel.pool, sel.plan, sel.fill
    out: list[SelectionWarning] = []
    for col, absent in sorted(plan.unknown_values.items()):
        j = pool.slice_key.index(col)
        present = sorted({v[j] for v in pool.slice_values})
        hints = [f"'{v}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(v, present, 1)) else "")
                 for v in absent]
        share = sum(quotas.get(col, {}).get(v, 0.0) for v in absent)
        out.append(SelectionWarning(
            "quota_values_absent", f"select.quotas.{col} lists {len(absent)} value(s) no eligible row has: "
            f"{', '.join(hints)}; their {share:.0%} of K is spread over the other slices (pool values: "
            f"{', '.join(present)})", len(absent)))
    if plan.clipped:
        out.append(SelectionWarning(
            "budget_clipped", f"select.K_hours = {plan.requested_budget:g} exceeds the eligible pool "
            f"({plan.budget:.3f} h): selecting within the whole pool"))
    stop = fill.stop
    if stop.get("reason") == "budget" and stop["unused_hours"] > UNUSED_BUDGET_WARN_FRACTION * plan.budget:
        row = stop["longest_head_row"]
        out.append(SelectionWarning(
            "budget_unused", f"the selection stopped {stop['unused_hours']:.3f} h ({stop['unused_hours'] / plan.budget:.1%}) "
            f"short of its budget: the next utterance does not fit (e.g. '{pool.utt_id[row]}', "
            f"{stop['longest_head_hours'] * 3600:.6g} s); selections are prefixes of one order, so rows after it "
            "are not taken; check duration_sec or raise select.K_hours"))
    if fill.repaired:
        out.append(SelectionWarning(
            "diversity_repaired", f"the exact diversity check dropped {len(fill.repaired)} selected row(s) with a "
            "near-duplicate picked earlier and refilled the budget", len(fill.repaired)))
    return out

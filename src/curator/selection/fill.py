"""The shared greedy that turns a strategy's utilities into a selection under budget, quotas and diversity.

Each slice offers its rows in its own order (utility, highest first). The greedy repeatedly takes the best
*head* among the slices, where a slice is *due* while its hours are below its quota share of what has been
selected so far (counting the head): a due head competes with its utility ``u``, any other head with
``u - penalty * (1 + overshoot)``, ``overshoot`` being the slice's relative excess over its share. With a
penalty of at least 1 (utilities lie in [0, 1]) quotas are strict, and once a slice runs dry the others grow
in proportion to their quotas (the deficit is redistributed proportionally); with 0 the best utilities win
regardless of slice. A head with a near-duplicate among the selected rows is blocked for good.

Nothing in this order depends on K: the selection for budget K is the longest prefix of one sequence that
fits in K. Selections are therefore nested in K (a 300 h subset lies inside the 700 h one), and everything
that grows with the prefix (tail hours, per-slice hours) is monotone in K.

Neighbour queries are batched: every slice's next rows (a window sized by its quota share, then by its
recent consumption) are queried together,
and the compiled kernel runs the merge until some slice's head falls outside its window; the windows are
then refilled and re-queried. Within a batch, pairs among the batch's own rows come from the same query,
so the outcome equals the one-row-at-a-time greedy for any window size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from curator.selection.diversity import NeighbourIndex
from curator.selection.params import DiversityParams

UNDECIDED, SELECTED, BLOCKED = 0, 1, 2
HOURS_EPS = 1e-9
"""Slack on hour comparisons so float rounding never rejects an exact fit or admits an overrun."""
FRACTION_FLOOR = 1e-12
"""Quota share used for slices with a zero quota: they only grow once every other slice is exhausted."""
RUNNING, DONE, NEED_QUERY = 0, 1, 2


@dataclass
class Fill:
    """Outcome per pool row: state (0 undecided, 1 selected, 2 blocked), selection order (-1); the index."""

    state: np.ndarray
    order: np.ndarray
    index: NeighbourIndex | None

    @property
    def queried(self) -> int:
        """Rows whose near-duplicates were looked up (including re-queries of unconsumed windows)."""
        return self.index.queried if self.index is not None else 0

    @property
    def search(self) -> dict:
        if self.index is None:
            return {"mode": "off"}
        return {"mode": self.index.mode, "nlist": self.index.nlist, "nprobe": self.index.nprobe}


def slice_order(utility: np.ndarray, tiebreak: np.ndarray, eligible: np.ndarray, group: np.ndarray,
                n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Eligible rows sorted by (slice, utility desc, tiebreak, row) and each slice's [start, end) bounds."""
    rows = np.flatnonzero(eligible)
    rows = rows[np.lexsort((rows, tiebreak[rows], -utility[rows], group[rows]))]
    bounds = np.searchsorted(group[rows], np.arange(n_groups + 1))
    return rows, bounds.astype(np.int64)


def greedy_fill(utility: np.ndarray, tiebreak: np.ndarray, eligible: np.ndarray, hours: np.ndarray,
                group: np.ndarray, share: np.ndarray, penalty: float, budget: float, emb: np.ndarray,
                diversity: DiversityParams, seed: int) -> Fill:
    """Run the quota-merged greedy described in the module docstring; ``share`` = quota fraction per slice."""
    n, n_groups = len(hours), len(share)
    rows, bounds = slice_order(utility, tiebreak, eligible, group, n_groups)
    state = np.zeros(n, dtype=np.int8)
    order = np.full(n, -1, dtype=np.int64)
    used = np.zeros(n_groups)
    totals = np.zeros(2)
    totals[1] = budget
    ptr = bounds[:-1].copy()
    share = np.asarray(share, dtype=np.float64)
    if len(rows) == 0:
        return Fill(state, order, None)
    index = NeighbourIndex(emb, rows, diversity, seed) if diversity.enabled else None
    batch_pos = np.full(n, -1, dtype=np.int64)
    window = _windows(share, diversity.chunk_size) if index is not None else None
    batch = np.zeros(0, dtype=np.int64)
    hit = np.zeros(0, dtype=np.bool_)
    lims = np.zeros(1, dtype=np.int64)
    nbrs = np.zeros(0, dtype=np.int64)
    counter = np.zeros(1, dtype=np.int64)
    status = NEED_QUERY if index is not None else RUNNING
    while status != DONE:
        if status == NEED_QUERY:
            assert index is not None and window is not None
            batch_pos[batch] = -1
            batch = _next_batch(rows, bounds, ptr, state, window)
            batch_pos[batch] = np.arange(len(batch))
            nb = index.query(batch)
            hit, lims, nbrs = nb.hit, nb.lims, nb.nbrs
        before, heads = int(counter[0]), ptr.copy()
        status = _merge(rows, bounds, ptr, state, order, used, totals, counter, utility, tiebreak, hours,
                        share, penalty, index is not None, batch, batch_pos, hit, lims, nbrs)
        if index is not None:
            fresh = np.flatnonzero(order[batch] >= before)
            index.add(batch[fresh], fresh)
            window = _windows(ptr - heads + 1.0, diversity.chunk_size)
    return Fill(state, order, index)


def _windows(weight: np.ndarray, chunk: int) -> np.ndarray:
    """Rows queried ahead per slice: the chunk split by ``weight`` (at least one row each).

    The first batch splits by quota share; later ones by how many rows each slice consumed in the last
    batch, so a slice the merge favours (e.g. with a small penalty) gets a larger window.
    """
    return np.maximum(1, np.round(chunk * weight / max(weight.sum(), FRACTION_FLOOR))).astype(np.int64)


def _next_batch(rows: np.ndarray, bounds: np.ndarray, ptr: np.ndarray, state: np.ndarray,
                window: np.ndarray) -> np.ndarray:
    """The next ``window[s]`` undecided rows of every slice, from its current head."""
    parts = []
    for s in range(len(window)):
        ahead = rows[ptr[s]:bounds[s + 1]]
        parts.append(ahead[state[ahead] == UNDECIDED][:window[s]])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@numba.njit(cache=True)
def _merge(rows, bounds, ptr, state, order, used, totals, counter, utility, tiebreak, hours, share,
           penalty, diverse, batch, batch_pos, hit, lims, nbrs):
    """Advance the merge until done, out of budget, or a chosen head needs a neighbour query."""
    n_groups = len(share)
    while True:
        total = totals[0]
        best = -1
        best_pri = -np.inf
        for s in range(n_groups):
            p = ptr[s]
            while p < bounds[s + 1] and state[rows[p]] != UNDECIDED:
                p += 1
            ptr[s] = p
            if p >= bounds[s + 1]:
                continue
            i = rows[p]
            h = hours[i]
            due = share[s] > 0.0 and used[s] + h <= share[s] * (total + h)
            pri = utility[i]
            if not due and penalty > 0:
                over = (used[s] + h) / (max(share[s], FRACTION_FLOOR) * (total + h)) - 1.0
                pri = utility[i] - penalty * (1.0 + over)
            if best < 0 or pri > best_pri or (pri == best_pri and tiebreak[i] < tiebreak[rows[ptr[best]]]):
                best, best_pri = s, pri
        if best < 0:
            return DONE
        i = rows[ptr[best]]
        if diverse:
            b = batch_pos[i]
            if b < 0:
                return NEED_QUERY
            blocked = hit[b]
            if not blocked:
                for e in range(lims[b], lims[b + 1]):
                    if state[batch[nbrs[e]]] == SELECTED:
                        blocked = True
                        break
            if blocked:
                state[i] = BLOCKED
                continue
        h = hours[i]
        if total + h > totals[1] + HOURS_EPS:
            return DONE
        state[i] = SELECTED
        used[best] += h
        totals[0] = total + h
        order[i] = counter[0]
        counter[0] += 1


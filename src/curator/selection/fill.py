"""The shared greedy that turns a strategy's utilities into a selection under budget, quotas and diversity.

Each slice offers its rows in its own order (utility, highest first). The greedy repeatedly takes the best
*head* among the slices. A slice is *due* while its hours, counting the head, stay within its water-filled
allocation of the hours selected so far (counting the head): the running total ``T`` is split in proportion
to the quota shares, each slice capped at its supply, and a capped slice's shortfall goes to the others in
proportion to their shares (zero-quota slices share what is left once every quota slice is full, in
proportion to supply). A slice whose rows run out (taken or blocked) is capped at what it got, so diversity
losses are redistributed the same way. A due head competes with its utility ``u``, any other head with
``u - penalty * (1 + overshoot)``, ``overshoot`` being the slice's relative excess over its allocation.
With a penalty of at least 1 (utilities lie in [0, 1]) due heads always win, so at every prefix each slice
is within one utterance of its allocation: infeasible quotas are redistributed in proportion, exactly as
``quotas.water_fill`` plans them. Below 1 the penalty trades quota fit for utility; 0 ignores quotas.

A head with a near-duplicate among the selected rows is blocked for good. Nothing in this order depends on
K: the selection for budget K is the longest prefix of one sequence that fits in K. Selections are
therefore nested in K (a 300 h subset lies inside the 700 h one), and everything that grows with the prefix
(tail hours, per-slice hours) is monotone in K.

Neighbour queries are batched: every slice's next rows (a window sized by its quota share, then by its
recent consumption) are queried together, and the compiled kernel runs the merge until some slice's head
falls outside its window; the windows are then refilled and re-queried. Within a batch, pairs among the
batch's own rows come from the same exact query (``diversity.py``), so the outcome equals the
one-row-at-a-time greedy for any window size and any search mode. Afterwards the final selection is
checked exactly (:func:`diversity.check_selection`); a violating pair (none is expected) loses its later
pick and the greedy resumes to refill the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numba
import numpy as np

from curator.selection.diversity import (
    CHECK_WORK_FACTOR,
    Cells,
    NeighbourIndex,
    SelectionCheck,
    check_selection,
    resolve_nlist,
    train_centroids,
)
from curator.selection.params import DiversityParams

log = logging.getLogger(__name__)

UNDECIDED, SELECTED, BLOCKED = 0, 1, 2
HOURS_EPS = 1e-9
"""Slack on hour comparisons so float rounding never rejects an exact fit or admits an overrun."""
FRACTION_FLOOR = 1e-12
"""Allocation floor in the overshoot ratio: a zero allocation makes any head maximally overshooting."""
RUNNING, DONE, NEED_QUERY = 0, 1, 2
MAX_REPAIR_ROUNDS = 3
"""Check-and-refill rounds after the greedy (the greedy is exact, so the first check should find nothing)."""
CHECK_MIN_PRODUCTS = 1 << 26
"""A full check is always affordable up to this many pair products (about a second), whatever the greedy did."""
CHECK_QUERY_ROWS = 8192
"""Rows per query block of the final check: bounds its (rows x cells) temporaries (as the greedy's batches do);
each block reads the members of the cells it reaches once, so larger blocks read the selection fewer times."""
CHECK_CELLS_MIN_ROWS = 16_384
"""Selections at least this large are checked with k-means cells (brute force below: it is cheap there)."""


@dataclass
class Fill:
    """Outcome per pool row: state (0 undecided, 1 selected, 2 blocked), selection order (-1); the index."""

    state: np.ndarray
    order: np.ndarray
    index: NeighbourIndex | None
    check: SelectionCheck | None = None
    repaired: list[int] = field(default_factory=list)
    stop: dict = field(default_factory=dict)

    @property
    def queried(self) -> int:
        """Rows whose near-duplicates were looked up (including re-queries of unconsumed windows)."""
        return self.index.queried if self.index is not None else 0

    @property
    def search(self) -> dict:
        if self.index is None:
            return {"mode": "off"}
        out = {"mode": self.index.mode, "nlist": self.index.nlist, "exact": True,
               "greedy_pair_products": self.index.products}
        if self.index.ring_share is not None:  # search: auto over enough rows for cells: what decided the mode
            out["ring_share"] = round(self.index.ring_share, 6)
        return out


def slice_order(utility: np.ndarray, tiebreak: np.ndarray, eligible: np.ndarray, group: np.ndarray,
                n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Eligible rows sorted by (slice, utility desc, tiebreak, row) and each slice's [start, end) bounds."""
    rows = np.flatnonzero(eligible)
    rows = rows[np.lexsort((rows, tiebreak[rows], -utility[rows], group[rows]))]
    bounds = np.searchsorted(group[rows], np.arange(n_groups + 1))
    return rows, bounds.astype(np.int64)


def greedy_fill(utility: np.ndarray, tiebreak: np.ndarray, eligible: np.ndarray, hours: np.ndarray,
                group: np.ndarray, share: np.ndarray, penalty: float, budget: float, emb: np.ndarray,
                diversity: DiversityParams, seed: int, supply: np.ndarray | None = None,
                cells: Cells | None = None, while_checking: Callable[[Fill], None] | None = None) -> Fill:
    """Run the quota-merged greedy described in the module docstring.

    ``share`` = quota fraction per slice, ``supply`` = eligible hours per slice (the water-filling caps;
    computed from ``eligible`` when None); ``cells``: :func:`diversity.index_cells` of the eligible rows when
    already computed. ``while_checking(fill)`` runs on the calling thread while the first exact check runs on
    another (the check's kernels release the GIL): a caller can prepare its outputs from the provisional
    selection meanwhile; ``fill.check`` is None until the check is done, and a non-empty ``fill.repaired``
    afterwards means the selection changed, so what was prepared is stale.
    """
    n, n_groups = len(hours), len(share)
    rows, bounds = slice_order(utility, tiebreak, eligible, group, n_groups)
    state = np.zeros(n, dtype=np.int8)
    order = np.full(n, -1, dtype=np.int64)
    if len(rows) == 0:
        return Fill(state, order, None)
    if supply is None:
        supply = np.bincount(group[rows], weights=hours[rows], minlength=n_groups)
    quota = _QuotaState(np.asarray(share, dtype=np.float64), np.asarray(supply, dtype=np.float64))
    used = np.zeros(n_groups)
    totals = np.array([0.0, budget])
    ptr = bounds[:-1].copy()
    index = NeighbourIndex(emb, rows, diversity, seed, cells=cells) if diversity.enabled else None
    counter = np.zeros(1, dtype=np.int64)
    fill = Fill(state, order, index)
    for _ in range(MAX_REPAIR_ROUNDS + 1):
        _run(rows, bounds, ptr, state, order, used, totals, counter, utility, tiebreak, hours, quota, penalty,
             index, diversity.chunk_size)
        if index is None:
            break
        picked = np.flatnonzero(state == SELECTED)
        picked = picked[np.argsort(order[picked], kind="stable")]
        centroids = _check_centroids(index, emb, picked, diversity, seed)
        located = index.cells_of(picked) if centroids is index.centroids else None
        windows = index.windows_for(picked) if centroids is index.centroids else None

        check = partial(check_selection, emb, picked, index.threshold, centroids, diversity.stats_sample, seed,
                        min(diversity.chunk_size, CHECK_QUERY_ROWS),
                        max_products=CHECK_WORK_FACTOR * max(index.products, CHECK_MIN_PRODUCTS),
                        located=located, windows=windows)

        if while_checking is not None and not fill.repaired:
            side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="select-check")
            pending = side.submit(check)
            try:
                while_checking(fill)
            finally:
                fill.check = pending.result()
                side.shutdown(wait=True)
        else:
            fill.check = check()
        if not len(fill.check.violations):
            break
        drop = np.unique(picked[fill.check.violations[:, 1]])
        log.warning("exact check found %d selected pair(s) above cosine %.4f; dropping the later pick of each "
                    "and refilling", len(fill.check.violations), index.threshold)
        fill.repaired.extend(drop.tolist())
        state[drop] = BLOCKED
        order[drop] = -1
        np.subtract.at(used, group[drop], hours[drop])
        totals[0] -= hours[drop].sum()
        index.remove(drop)
        ptr[:] = bounds[:-1]
    fill.stop = _stop_reason(rows, bounds, ptr, state, hours, totals)
    return fill


def _check_centroids(index: NeighbourIndex, emb: np.ndarray, picked: np.ndarray, params: DiversityParams,
                     seed: int) -> np.ndarray | None:
    """The greedy's cells, or cells trained on the selection when it is large and the greedy had none (not when
    ``search: auto`` chose the exact blocks because cells would prune too little: the check then does the same)."""
    if index.centroids is not None or index.ring_share is not None or len(picked) < CHECK_CELLS_MIN_ROWS:
        return index.centroids
    nlist = resolve_nlist(params, len(picked))
    return train_centroids(emb, picked, nlist, params, seed) if nlist > 1 else None


def _stop_reason(rows: np.ndarray, bounds: np.ndarray, ptr: np.ndarray, state: np.ndarray, hours: np.ndarray,
                 totals: np.ndarray) -> dict:
    """Why the greedy stopped: the pool ran out, or the next head did not fit in what was left of the budget."""
    heads = [rows[p] for p, end in zip(ptr.tolist(), bounds[1:].tolist(), strict=True)
             if p < end and state[rows[p]] == UNDECIDED]
    left = float(totals[1] - totals[0])
    if not heads:
        return {"reason": "pool_exhausted", "unused_hours": left}
    longest = max(heads, key=lambda r: hours[r])
    return {"reason": "budget", "unused_hours": left, "longest_head_row": int(longest),
            "longest_head_hours": float(hours[longest])}


class _QuotaState:
    """Water-filling weights (quota shares) and caps (supply; a slice's hours once its rows run out)."""

    def __init__(self, share: np.ndarray, supply: np.ndarray) -> None:
        self.weight = share
        self.cap = supply.copy()
        self.exhausted = np.zeros(len(share), dtype=np.bool_)


def _run(rows, bounds, ptr, state, order, used, totals, counter, utility, tiebreak, hours, quota, penalty,  # noqa: ANN001
         index: NeighbourIndex | None, chunk: int) -> None:
    """Alternate neighbour queries and the compiled merge until the merge is done."""
    n = len(state)
    batch_pos = np.full(n, -1, dtype=np.int64)
    share = quota.weight
    window = _windows(share if share.sum() > 0 else np.ones(len(share)), chunk) if index is not None else None
    batch = np.zeros(0, dtype=np.int64)
    hit = np.zeros(0, dtype=np.bool_)
    lims = np.zeros(1, dtype=np.int64)
    nbrs = np.zeros(0, dtype=np.int64)
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
                        quota.weight, quota.cap, quota.exhausted, penalty, index is not None, batch, batch_pos,
                        hit, lims, nbrs)
        if index is not None:
            fresh = np.flatnonzero(order[batch] >= before)
            index.add(batch[fresh], fresh)
            window = _windows(ptr - heads + 1.0, chunk)


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
def _allocation(s, total, weight, cap):
    """Slice ``s``'s water-filled share of ``total`` hours: ``min(cap, lam * weight)``, the rest by supply.

    ``lam`` solves ``sum(min(cap, lam * weight)) = total`` over weighted slices: slices whose share at the
    current ``lam`` exceeds their cap are fixed at it and ``lam`` is recomputed over the rest, until none
    changes (at most one round per slice). Past every weighted cap, zero-weight slices share the excess by
    ``cap``. The same allocation as ``quotas.water_fill``, evaluated at every prefix of the greedy.
    """
    g = len(weight)
    w_total = 0.0
    pos_cap = 0.0
    zero_cap = 0.0
    for k in range(g):
        if weight[k] > 0.0:
            w_total += weight[k]
            pos_cap += cap[k]
        else:
            zero_cap += cap[k]
    if total >= pos_cap:
        if weight[s] > 0.0:
            return cap[s]
        if zero_cap <= 0.0:
            return 0.0
        return cap[s] * min(1.0, (total - pos_cap) / zero_cap)
    if weight[s] <= 0.0:
        return 0.0
    # raise lam through the breakpoints cap[k] / weight[k] in increasing order
    capped = np.zeros(g, dtype=np.bool_)
    fixed = 0.0
    free_w = w_total
    while True:
        lam = (total - fixed) / free_w
        changed = False
        for k in range(g):
            if weight[k] > 0.0 and not capped[k] and lam * weight[k] > cap[k]:
                capped[k] = True
                fixed += cap[k]
                free_w -= weight[k]
                changed = True
        if not changed or free_w <= 0.0:
            break
    if capped[s]:
        return cap[s]
    return min(cap[s], (total - fixed) / free_w * weight[s]) if free_w > 0.0 else cap[s]


@numba.njit(cache=True)
def _merge(rows, bounds, ptr, state, order, used, totals, counter, utility, tiebreak, hours, weight, cap,
           exhausted, penalty, diverse, batch, batch_pos, hit, lims, nbrs):
    """Advance the merge until done, out of budget, or a chosen head needs a neighbour query."""
    n_groups = len(weight)
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
                if not exhausted[s]:
                    exhausted[s] = True
                    cap[s] = used[s]
                continue
        for s in range(n_groups):
            p = ptr[s]
            if p >= bounds[s + 1]:
                continue
            i = rows[p]
            h = hours[i]
            alloc = _allocation(s, total + h, weight, cap)
            due = used[s] + h <= alloc + HOURS_EPS
            pri = utility[i]
            if not due and penalty > 0:
                over = (used[s] + h) / max(alloc, FRACTION_FLOOR * (total + h)) - 1.0
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

"""The shared greedy that turns a strategy's utilities into a selection under budget, quotas and diversity.

Every eligible row is offered twice, in one static order of "entries":

* in quota, with priority ``utility + penalty``, taken only while its slice is under its feasible quota;
* as overflow, with priority ``utility - penalty * (1 + overshoot)``, where ``overshoot`` is how far past its
  slice's quota the row sits in the slice's own order, relative to that quota.

This is the greedy on marginal value of ``sum(utility) - penalty * quota violation``: with a penalty of at
least 0.5 (utilities lie in [0, 1]) quotas come first and the hours diversity left unfilled go to slices in
proportion to their quotas; with 0 the quotas are ignored and the best utilities win. An entry is taken when
its row is still undecided, fits the budget (and its slice's quota, for an in-quota entry) and has no
near-duplicate among the rows selected so far; a row with one is blocked for good. Entries are handled in
chunks: the compiled kernels gather the next candidates, one batched neighbour query answers for the whole
chunk, and the kernel commits them in order, so the result equals the one-row-at-a-time greedy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from curator.selection.diversity import NeighbourIndex
from curator.selection.params import DiversityParams

UNDECIDED, SELECTED, BLOCKED = 0, 1, 2
IN_QUOTA, OVERFLOW = 0, 1
HOURS_EPS = 1e-9
"""Slack on hour comparisons so float rounding never rejects an exact fit or admits an overrun."""


@dataclass
class Fill:
    """Outcome per pool row: state (0 undecided, 1 selected, 2 blocked), selection order (-1) and entry kind."""

    state: np.ndarray
    order: np.ndarray
    kind: np.ndarray
    queried: int
    search: dict


def entry_order(utility: np.ndarray, tiebreak: np.ndarray, eligible: np.ndarray, hours: np.ndarray,
                group: np.ndarray, quota: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """The static order of (row, kind) entries described in the module docstring."""
    rows = np.flatnonzero(eligible)
    u, tb, g, h = utility[rows], tiebreak[rows], group[rows], hours[rows]
    by_slice = np.lexsort((rows, tb, -u, g))
    gs, hs = g[by_slice], h[by_slice]
    cum = np.cumsum(hs)
    start = np.concatenate(([0.0], cum))[np.searchsorted(gs, gs, side="left")]
    overshoot = np.empty(len(rows))
    overshoot[by_slice] = np.maximum(cum - start - quota[gs], 0.0) / np.maximum(quota[gs], hs)
    key = np.concatenate([u + penalty, u - penalty * (1.0 + overshoot)])
    kind = np.repeat(np.array([IN_QUOTA, OVERFLOW], dtype=np.int8), len(rows))
    both = np.concatenate([rows, rows])
    order = np.lexsort((both, np.concatenate([tb, tb]), kind, -key))
    return both[order], kind[order]


def greedy_fill(entries: np.ndarray, kinds: np.ndarray, hours: np.ndarray, group: np.ndarray,
                quota: np.ndarray, budget: float, emb: np.ndarray, diversity: DiversityParams,
                seed: int) -> Fill:
    """Run the chunked greedy over ``entries`` (see the module docstring)."""
    n = len(hours)
    state = np.zeros(n, dtype=np.int8)
    order = np.full(n, -1, dtype=np.int64)
    kind = np.full(n, -1, dtype=np.int8)
    used = np.zeros(len(quota))
    total = np.zeros(1)
    counter = np.zeros(1, dtype=np.int64)
    candidates = np.unique(entries)
    if len(candidates) == 0:
        return Fill(state, order, kind, 0, {"mode": "none"})
    min_hours = float(hours[candidates].min())
    index = NeighbourIndex(emb, candidates, diversity, seed) if diversity.enabled else None
    chunk = diversity.chunk_size if index is not None else len(entries)
    buf_rows = np.empty(chunk, dtype=np.int64)
    buf_kind = np.empty(chunk, dtype=np.int8)
    pos = 0
    while pos < len(entries) and budget - total[0] >= min_hours - HOURS_EPS:
        got, pos = _gather(entries, kinds, pos, state, hours, group, used, quota, total[0], budget,
                           buf_rows, buf_kind)
        if got == 0:
            break
        occ_rows, occ_kind = buf_rows[:got], buf_kind[:got]
        distinct, occ_pos = np.unique(occ_rows, return_inverse=True)
        if index is not None:
            nb = index.query(distinct)
            hit, lims, nbrs = nb.hit, nb.lims, nb.nbrs
        else:
            hit = np.zeros(len(distinct), dtype=bool)
            lims = np.zeros(len(distinct) + 1, dtype=np.int64)
            nbrs = np.zeros(0, dtype=np.int64)
        chosen = np.zeros(len(distinct), dtype=np.bool_)
        _commit(occ_rows, occ_kind, occ_pos.astype(np.int64), hit, lims, nbrs, hours, group, used, quota,
                total, budget, state, chosen, order, kind, counter)
        if index is not None:
            index.add(distinct[chosen])
    search = ({"mode": index.mode, "nlist": index.nlist, "nprobe": index.nprobe}
              if index is not None else {"mode": "off"})
    return Fill(state, order, kind, index.queried if index is not None else 0, search)


@numba.njit(cache=True)
def _gather(entries, kinds, pos, state, hours, group, used, quota, total, budget, out_rows, out_kind):
    """Collect the next undecided entries that fit the budget (and quota) as things stand now."""
    got = 0
    limit = len(out_rows)
    while pos < len(entries) and got < limit:
        i = entries[pos]
        k = kinds[pos]
        pos += 1
        if state[i] != UNDECIDED:
            continue
        h = hours[i]
        if total + h > budget + HOURS_EPS:
            continue
        if k == IN_QUOTA and used[group[i]] + h > quota[group[i]] + HOURS_EPS:
            continue
        out_rows[got] = i
        out_kind[got] = k
        got += 1
    return got, pos


@numba.njit(cache=True)
def _commit(occ_rows, occ_kind, occ_pos, hit, lims, nbrs, hours, group, used, quota, total, budget, state,
            chosen, order, kind, counter):
    """Take the gathered entries in order: block near-duplicates of selected rows, select what still fits."""
    for k in range(len(occ_rows)):
        i = occ_rows[k]
        if state[i] != UNDECIDED:
            continue
        p = occ_pos[k]
        if hit[p]:
            state[i] = BLOCKED
            continue
        clash = False
        for e in range(lims[p], lims[p + 1]):
            if chosen[nbrs[e]]:
                clash = True
                break
        if clash:
            state[i] = BLOCKED
            continue
        h = hours[i]
        g = group[i]
        if total[0] + h > budget + HOURS_EPS:
            continue
        if occ_kind[k] == IN_QUOTA and used[g] + h > quota[g] + HOURS_EPS:
            continue
        state[i] = SELECTED
        chosen[p] = True
        used[g] += h
        total[0] += h
        order[i] = counter[0]
        kind[i] = occ_kind[k]
        counter[0] += 1

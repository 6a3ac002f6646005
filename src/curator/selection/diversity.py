"""Whole-selection diversity: no two selected embeddings with cosine similarity above ``1 - min_cosine``.

The selection greedy (``fill.py``) asks, batch by batch, which candidates have a near-duplicate among the
rows selected so far, and which candidates of the batch are near-duplicates of each other. Only selected
rows are indexed and only rows the greedy reaches are queried, so the work grows with the selection, not
with the square of the pool.

**Every answer is exact, in every mode.** The index is an inverted file over spherical k-means cells, but a
query does not scan a fixed number of nearest cells (``nprobe``, which misses pairs on dense embeddings).
Angles between unit vectors are a metric, so for a stored vector ``v`` of cell ``c`` (centroid ``m``) and a
query ``q``, ``angle(q, v) >= |angle(q, m) - angle(v, m)|``. Each cell keeps the smallest and largest angle
of its stored vectors to its centroid, and its members sorted by that angle: a query scans only the cells
whose angular annulus can hold a vector within ``arccos(threshold)`` of it, and in each only the *ring* of
members whose angle to the centroid is within ``arccos(threshold)`` of its own (a binary search), with a
safety margin for float32 rounding. Pairs within ``BORDER_BAND`` of the threshold are re-decided in float64,
so a pair's verdict never depends on how the products were computed. Hence the greedy's outcome is the
one-row-at-a-time exact greedy for any ``chunk_size``, ``nlist`` and ``nprobe``; the cells only decide how
much work is skipped. ``exact`` mode is one cell (every pair, BLAS blocks of bounded memory).

Speed (IVF): the cells are seeded one per natural cluster of the data (:func:`train_centroids`), so a query's
rings hold a few hundred rows; the scans are compiled (numba) and run cell by cell, each cell's members read
once per batch from one contiguous buffer; the only dense products are each batch's cosines to the
centroids (one BLAS call per batch).

After the greedy, :func:`check_selection` verifies the final selection independently of the greedy's
batching (an exact all-pairs range search over the selected rows with the same bounds, in blocks of
queries against static cells built from the final selection) and measures the
largest selected-pair cosine exactly; ``fill.py`` drops the later pick of any violating pair (none is
expected: the greedy is exact) and the metrics report what was checked, found and repaired.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numba
import numpy as np

from curator.selection.params import DiversityParams

GROWTH = 1.5
"""Capacity factor of a cell's vector buffer when it fills up (amortised O(1) appends, <= 50% slack)."""
MIN_CAPACITY = 16
ANGLE_MARGIN = 1e-2
"""Radians added to every pruning bound: float32 unit vectors and products carry ~1e-7 relative error,
which near cos = 1 becomes an angle error of up to sqrt(2e-7) ~ 5e-4 rad; 1e-2 covers it twenty-fold."""
BORDER_BAND = 1e-5
"""Float32 cosines this close to the threshold are recomputed in float64, so blocking never flips a verdict."""
MAX_PRODUCT_ELEMENTS = 1 << 22
"""Largest similarity block computed at once (16 MiB of float32): bounds memory in exact mode."""
NN_MAX_TOLERANCE = 1e-3
"""The largest selected-pair cosine is refined by a second exact pass when the first leaves more than this
between the largest cosine found and the threshold (the only region the first pass did not search)."""
REFINE_WORK_FACTOR = 0.5
"""The refining pass runs only if it computes at most this many times the first pass's pair products."""
NLIST_PER_SQRT_ROWS = 5.0
"""Most cells per sqrt(candidates) when ``nlist`` is 0; seeding stops earlier on data with fewer clusters (see
:func:`resolve_nlist`)."""
SEED_QUANTILE = 0.999
"""Cell seeding (:func:`_seed_cells`): a sampled row starts a cell when its cosine to every seed is below this
quantile of random-pair cosines (rows of one cluster are more alike than 999 random pairs in 1000). This finds
one seed per cluster when the data has over ~1,000 clusters (each then holds under 1/1000 of the pairs); with
fewer, large clusters get several seeds, up to the cap: finer cells, still exact, slightly more work. With
thousands of seeds a few clusters go unseeded (one of their rows lies above the threshold to an unrelated seed
by chance) and share a cell after the Lloyd iterations: more work for those rows, never a different answer."""
STABLE_FRACTION = 0.1
"""Lloyd iterations stop when at most this share of the sample changes cell. On the 1M-row benchmark table the
second iteration moves 11% of the sample and the third 0.4%: stopping after the second (at 15%) more than
doubled the pair products of the greedy and the check (1.35e8 against 5.9e7), so three run there; each costs
about 1.5 s."""
SEED_PAIRS = 1024
"""Rows on each side of the random-pair cosine sample that sets the seeding threshold."""
SEED_BLOCK = 1024
"""Sampled rows compared with the seeds at once."""
SEED_ROWS = 1 << 15
"""Rows of the training sample the seeding visits (each seed costs a product with every later visited row;
the Lloyd iterations then use the whole sample)."""
MAX_TRAIN_POINTS = 1 << 16
"""k-means training sample cap: training costs sample x cells x dim per iteration, and the cells only need
to be roughly right (any assignment keeps the search exact; tighter cells only prune more)."""
ESTIMATE_ROWS = 2048
"""Rows whose cell tests estimate the cost of a full check (a seeded sample)."""
CHECK_WORK_FACTOR = 2.0
"""A full check runs when it is estimated at most this many times the greedy's own pair products; beyond,
the selection is audited on a sample (see :func:`check_selection`). The greedy stops a query at its first
hit and the check does not, so the full check's products run near the greedy's (on the 1M-row benchmark
table: 5.4e7 against 5.9e7); a factor of 2 keeps it full there with room, and the audit for embeddings whose
cells prune little."""
STATS_MAX_PAIRS = 1 << 26
"""Pair products spent on the exact nearest-neighbour mean: the sample shrinks on large selections."""


@dataclass
class ChunkNeighbours:
    """For a batch of distinct rows: whether each has a selected near-duplicate, and its in-batch ones (CSR)."""

    hit: np.ndarray
    lims: np.ndarray
    nbrs: np.ndarray


class NeighbourIndex:
    """Exact near-duplicate queries against a growing set of selected rows (see the module docstring)."""

    def __init__(self, emb: np.ndarray, candidates: np.ndarray, params: DiversityParams, seed: int) -> None:
        self.emb = emb
        self.threshold = float(params.threshold)
        self.theta = float(np.arccos(np.clip(self.threshold, -1.0, 1.0)))
        self.mode = resolve_mode(params, len(candidates))
        self.centroids: np.ndarray | None = None
        self.nlist = 1
        if self.mode == "ivf":
            self.nlist = resolve_nlist(params, len(candidates))
            if self.nlist > 1:
                self.centroids = train_centroids(emb, candidates, self.nlist, params, seed)
                self.nlist = len(self.centroids)  # seeding may find fewer clusters than the cap
        self.cells = CellStore(self.nlist, emb.shape[1]) if self.centroids is None else None
        self.ring = RingStore(self.nlist) if self.centroids is not None else None
        self.width = self.theta + ANGLE_MARGIN
        self.upper = np.float32(self.threshold + BORDER_BAND)
        self.lower = np.float32(self.threshold - BORDER_BAND)
        self.queried = 0
        self.products = 0
        self._home = np.zeros(0, dtype=np.int64)
        self._angle = np.zeros(0)

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Home cell (nearest centroid), angle to it, and the cosines to every centroid (None: one cell)."""
        if self.centroids is None:
            return np.zeros(len(x), dtype=np.int64), np.zeros(len(x)), None
        sims = x @ self.centroids.T
        home = np.argmax(sims, axis=1)
        angle = np.arccos(np.clip(sims[np.arange(len(x)), home].astype(np.float64), -1.0, 1.0))
        return home, angle, sims

    def query(self, rows: np.ndarray) -> ChunkNeighbours:
        """Near-duplicates of ``rows`` (distinct) among the selected rows and among ``rows`` themselves."""
        x = np.ascontiguousarray(self.emb[rows])
        self.queried += len(rows)
        home, angle, sims = self.locate(x)
        self._home, self._angle = home, angle
        if sims is not None:
            return self._query_cells(rows, x, home, angle, sims)
        hit = np.zeros(len(rows), dtype=bool)
        cells = self.cells
        for cell, qs in cell_groups(sims, len(rows), cells.rmin, cells.rmax, cells.sizes > 0, self.theta):
            todo = qs[~hit[qs]]
            if len(todo):
                hit[todo] = self._any_above(x[todo], cells.vectors(cell))
        members, bounds = _members_by_cell(home, self.nlist)
        rmin, rmax = _radii(home, angle, self.nlist)
        pair_q, pair_b = [], []
        for cell, qs in cell_groups(sims, len(rows), rmin, rmax, np.diff(bounds) > 0, self.theta):
            mine = members[bounds[cell]:bounds[cell + 1]]
            for lo, hi in _blocks(len(qs), len(mine)):
                qi, bi = np.nonzero(exceeds(x[qs] @ x[mine[lo:hi]].T, x[qs], x[mine[lo:hi]], self.threshold))
                self.products += len(qs) * (hi - lo)
                pair_q.append(qs[qi])
                pair_b.append(mine[lo:hi][bi])
        return ChunkNeighbours(hit=hit, **_csr(pair_q, pair_b, len(rows)))

    def _query_cells(self, rows: np.ndarray, x: np.ndarray, home: np.ndarray, angle: np.ndarray,
                     sims: np.ndarray) -> ChunkNeighbours:
        """:meth:`query` with k-means cells: compiled ring scans, one cell at a time (module docstring)."""
        hit = np.zeros(len(rows), dtype=bool)
        store = self.ring
        if store.size:
            lo, hi = cosine_window(store.rmin, store.rmax, np.isfinite(store.rmax), self.theta)
            cptr, cq, cang = _cell_queries(sims, lo, hi)
            mptr, mrow, mang = store.csr()
            self.products += _ring_hits(x, cptr, cq, cang, mptr, mrow, mang, self.emb, self.width, self.upper,
                                        self.lower, self.threshold, hit)
        bptr, order = _by_cell(home, angle, self.nlist)
        rmin, rmax = _radii(home, angle, self.nlist)
        lo, hi = cosine_window(rmin, rmax, np.diff(bptr) > 0, self.theta)
        cptr, cq, cang = _cell_queries(sims, lo, hi)
        # every ordered pair of distinct batch rows (member key 0 < query key 1); self-pairs are dropped by _csr
        out_q, out_m, work = _ring_pairs(x, np.ones(len(rows), dtype=np.int64), cptr, cq, cang, bptr, x[order],
                                         np.zeros(len(rows), dtype=np.int64), angle[order], self.width,
                                         self.upper, self.lower, self.threshold,
                                         np.full(len(rows), -2.0, np.float32), np.full(len(rows), -2.0, np.float32))
        self.products += work
        return ChunkNeighbours(hit=hit, **_csr([out_q], [order[out_m]], len(rows)))

    def _any_above(self, xq: np.ndarray, stored: np.ndarray) -> np.ndarray:
        found = np.zeros(len(xq), dtype=bool)
        for lo, hi in _blocks(len(xq), len(stored)):
            block = stored[lo:hi]
            found |= exceeds(xq @ block.T, xq, block, self.threshold).any(axis=1)
            self.products += len(xq) * (hi - lo)
        return found

    def add(self, rows: np.ndarray, positions: np.ndarray) -> None:
        """Store newly selected ``rows``; ``positions`` are their indices in the last :meth:`query` batch."""
        if len(rows) and self.ring is not None:
            self.ring.append(self._home[positions], rows, self._angle[positions])
        elif len(rows):
            self.cells.append(self._home[positions], self.emb[rows], rows, self._angle[positions])

    def cells_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Home cell and angle of stored ``rows`` (as located when queried); None in a one-cell index."""
        store = self.ring
        if store is None:
            return None
        order = np.argsort(store.rows[:store.size], kind="stable")
        at = order[np.searchsorted(store.rows[:store.size], rows, sorter=order)]
        if not np.array_equal(store.rows[at], rows):
            raise ValueError("cells_of: some rows are not stored")
        return store.cell[at].copy(), store.angle[at].copy()

    def remove(self, rows: np.ndarray) -> None:
        """Forget stored ``rows`` (a repair dropped them from the selection)."""
        (self.ring if self.ring is not None else self.cells).remove(rows)


class CellStore:
    """Per-cell growable float32 buffers of the selected vectors, with each cell's angular annulus."""

    def __init__(self, nlist: int, dim: int) -> None:
        self.dim = dim
        self.buffers: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)] * nlist
        self.row_ids: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * nlist
        self.angles: list[np.ndarray] = [np.zeros(0)] * nlist
        self.sizes = np.zeros(nlist, dtype=np.int64)
        self.rmin = np.full(nlist, np.inf)
        self.rmax = np.full(nlist, -np.inf)

    @property
    def total(self) -> int:
        return int(self.sizes.sum())

    def vectors(self, cell: int) -> np.ndarray:
        return self.buffers[cell][: self.sizes[cell]]

    def ids(self, cell: int) -> np.ndarray:
        return self.row_ids[cell][: self.sizes[cell]]

    def append(self, cells: np.ndarray, x: np.ndarray, rows: np.ndarray, angles: np.ndarray | None = None) -> None:
        if angles is None:
            angles = np.zeros(len(rows))
        order = np.argsort(cells, kind="stable")
        uniq, starts = np.unique(cells[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        for cell, lo, hi in zip(uniq.tolist(), starts.tolist(), ends.tolist(), strict=True):
            take = order[lo:hi]
            size = int(self.sizes[cell])
            if size + len(take) > len(self.buffers[cell]):
                cap = max(MIN_CAPACITY, int(GROWTH * (size + len(take))))
                self.buffers[cell] = _grow(self.buffers[cell], size, (cap, self.dim))
                self.row_ids[cell] = _grow(self.row_ids[cell], size, (cap,))
                self.angles[cell] = _grow(self.angles[cell], size, (cap,))
            self.buffers[cell][size:size + len(take)] = x[take]
            self.row_ids[cell][size:size + len(take)] = rows[take]
            self.angles[cell][size:size + len(take)] = angles[take]
            self.sizes[cell] = size + len(take)
            self.rmin[cell] = min(self.rmin[cell], float(angles[take].min()))
            self.rmax[cell] = max(self.rmax[cell], float(angles[take].max()))

    def remove(self, rows: np.ndarray) -> None:
        """Drop ``rows`` wherever they are stored (the annuli stay as wide: still a valid bound)."""
        gone = set(rows.tolist())
        for cell in np.flatnonzero(self.sizes).tolist():
            ids = self.ids(cell)
            keep = np.array([r not in gone for r in ids.tolist()], dtype=bool)
            if keep.all():
                continue
            n = int(keep.sum())
            self.buffers[cell][:n] = self.vectors(cell)[keep]
            self.angles[cell][:n] = self.angles[cell][: self.sizes[cell]][keep]
            self.row_ids[cell][:n] = ids[keep]
            self.sizes[cell] = n


@numba.njit(cache=True, fastmath=True)
def _dot32(a, b):  # noqa: ANN001, ANN202
    """Float32 dot product (vectorised; its rounding is settled by the float64 border re-decision)."""
    acc = np.float32(0.0)
    for k in range(a.shape[0]):
        acc += a[k] * b[k]
    return acc


@numba.njit(cache=True)
def _above(s, a, b, upper, lower, threshold):  # noqa: ANN001, ANN202
    """:func:`exceeds` for one pair: float32 ``s`` decided outside the border band, float64 inside it."""
    if s > upper:
        return True
    if s < lower:
        return False
    acc = 0.0
    for k in range(a.shape[0]):
        acc += np.float64(a[k]) * np.float64(b[k])
    return acc > threshold


@numba.njit(cache=True)
def _cell_queries(sims, lo, hi):  # noqa: ANN001, ANN202
    """CSR cell -> (queries, their angle to the cell's centroid) for the (query, cell) pairs in the window."""
    n, nlist = sims.shape
    ptr = np.zeros(nlist + 1, dtype=np.int64)
    for q in range(n):
        for c in range(nlist):
            s = sims[q, c]
            if s >= lo[c] and s <= hi[c]:
                ptr[c + 1] += 1
    for c in range(nlist):
        ptr[c + 1] += ptr[c]
    fill = ptr[:-1].copy()
    queries = np.empty(ptr[nlist], dtype=np.int64)
    angles = np.empty(ptr[nlist], dtype=np.float64)
    for q in range(n):
        for c in range(nlist):
            s = sims[q, c]
            if s >= lo[c] and s <= hi[c]:
                queries[fill[c]] = q
                angles[fill[c]] = np.arccos(min(1.0, max(-1.0, np.float64(s))))
                fill[c] += 1
    return ptr, queries, angles


@numba.njit(cache=True)
def _rings(cang, k0, k1, mang, m0, m1, width):  # noqa: ANN001, ANN202
    """Each query's ring ``[first, last)`` among a cell's angle-sorted members (binary searches), their union
    ``[lo, hi)`` and total size."""
    first = np.empty(k1 - k0, dtype=np.int64)
    last = np.empty(k1 - k0, dtype=np.int64)
    lo, hi, total = m1, m0, 0
    for k in range(k0, k1):
        f = m0 + np.searchsorted(mang[m0:m1], cang[k] - width)
        t = m0 + np.searchsorted(mang[m0:m1], cang[k] + width, side="right")
        first[k - k0], last[k - k0] = f, t
        if t > f:
            lo, hi, total = min(lo, f), max(hi, t), total + t - f
    return first, last, lo, max(hi, lo), total


@numba.njit(cache=True)
def _ring_hits(xq, cptr, cq, cang, mptr, mrow, mang, emb, width, upper, lower, threshold, hit):  # noqa: ANN001, ANN202
    """Set ``hit[q]`` when a stored row lies above the threshold; returns the pair products computed.

    Cell by cell (its members, sorted by angle, gathered into one contiguous buffer), each query in the cell's
    window scans the members whose angle to the centroid is within ``width`` of its own (the triangle
    inequality of angles; a binary search finds them), until its first hit.
    """
    work = 0
    largest = 0
    for c in range(len(cptr) - 1):
        largest = max(largest, mptr[c + 1] - mptr[c])
    buf = np.empty((largest, xq.shape[1]), dtype=np.float32)
    for c in range(len(cptr) - 1):
        m0, m1 = mptr[c], mptr[c + 1]
        k0, k1 = cptr[c], cptr[c + 1]
        if m0 == m1 or k0 == k1:
            continue
        for j in range(m0, m1):
            buf[j - m0] = emb[mrow[j]]
        first, last, _, _, _ = _rings(cang, k0, k1, mang, m0, m1, width)
        for k in range(k0, k1):
            q = cq[k]
            if hit[q]:
                continue
            x = xq[q]
            for j in range(first[k - k0], last[k - k0]):
                v = buf[j - m0]
                work += 1
                if _above(_dot32(x, v), x, v, upper, lower, threshold):
                    hit[q] = True
                    break
    return work


@numba.njit(cache=True)
def _ring_pairs(xq, qkey, cptr, cq, cang, mptr, mvec, mkey, mang, width, upper, lower, threshold,
                best, mbest):  # noqa: ANN001, ANN202
    """Every (query, member) pair above the threshold with ``mkey < qkey`` (scanned as in :func:`_ring_hits`;
    ``mvec``: the members' vectors in CSR order).

    Returns (query positions, member positions in the CSR, pair products); ``best`` / ``mbest`` take the largest
    cosine of each query / member over its ring pairs.
    """
    out_q = np.empty(64, dtype=np.int64)
    out_m = np.empty(64, dtype=np.int64)
    n_out = 0
    work = 0
    for c in range(len(cptr) - 1):
        m0, m1 = mptr[c], mptr[c + 1]
        k0, k1 = cptr[c], cptr[c + 1]
        if m0 == m1 or k0 == k1:
            continue
        first, last, _, _, _ = _rings(cang, k0, k1, mang, m0, m1, width)
        for k in range(k0, k1):
            q = cq[k]
            x = xq[q]
            key = qkey[q]
            for j in range(first[k - k0], last[k - k0]):
                if mkey[j] >= key:
                    continue
                v = mvec[j]
                work += 1
                s = _dot32(x, v)
                if s > best[q]:
                    best[q] = s
                if s > mbest[j]:
                    mbest[j] = s
                if _above(s, x, v, upper, lower, threshold):
                    if n_out == len(out_q):
                        out_q = np.concatenate((out_q, np.empty(n_out, dtype=np.int64)))
                        out_m = np.concatenate((out_m, np.empty(n_out, dtype=np.int64)))
                    out_q[n_out] = q
                    out_m[n_out] = j
                    n_out += 1
    return out_q[:n_out], out_m[:n_out], work


@numba.njit(cache=True)
def _ring_count(cptr, cang, mptr, mang, width):  # noqa: ANN001, ANN202
    """Pair products a ring scan would compute (every member of every windowed cell, no early stop)."""
    work = 0
    for c in range(len(cptr) - 1):
        seg = mang[mptr[c]:mptr[c + 1]]
        for k in range(cptr[c], cptr[c + 1]):
            a = cang[k]
            work += np.searchsorted(seg, a + width, side="right") - np.searchsorted(seg, a - width)
    return work


@numba.njit(cache=True)
def _by_cell(cell, angle, nlist):  # noqa: ANN001, ANN202
    """Positions sorted by (cell, angle) (a counting sort, then each cell by angle) and the CSR pointers."""
    ptr = np.zeros(nlist + 1, dtype=np.int64)
    for i in range(len(cell)):
        ptr[cell[i] + 1] += 1
    for c in range(nlist):
        ptr[c + 1] += ptr[c]
    fill = ptr[:-1].copy()
    order = np.empty(len(cell), dtype=np.int64)
    for i in range(len(cell)):
        order[fill[cell[i]]] = i
        fill[cell[i]] += 1
    for c in range(nlist):
        seg = order[ptr[c]:ptr[c + 1]]
        if len(seg) > 1:
            order[ptr[c]:ptr[c + 1]] = seg[np.argsort(angle[seg], kind="mergesort")]
    return ptr, order


class RingStore:
    """The selected rows of a multi-cell index: row id, home cell and angle to it (vectors stay in ``emb``).

    Members are regrouped by cell (a counting sort) when a query follows additions; each cell keeps the
    smallest and largest member angle (its annulus) for a first, per-cell window test.
    """

    def __init__(self, nlist: int) -> None:
        self.nlist = nlist
        self.rows = np.zeros(0, dtype=np.int64)
        self.cell = np.zeros(0, dtype=np.int64)
        self.angle = np.zeros(0)
        self.size = 0
        self.rmin = np.full(nlist, np.inf)
        self.rmax = np.full(nlist, -np.inf)
        self._csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.cell[:self.size], minlength=self.nlist)

    @property
    def total(self) -> int:
        return self.size

    def append(self, cells: np.ndarray, rows: np.ndarray, angles: np.ndarray) -> None:
        if not len(rows):
            return
        need = self.size + len(rows)
        if need > len(self.rows):
            cap = max(MIN_CAPACITY, int(GROWTH * need))
            self.rows, self.cell, self.angle = (_grow(a, self.size, (cap,)) for a in (self.rows, self.cell, self.angle))
        self.rows[self.size:need] = rows
        self.cell[self.size:need] = cells
        self.angle[self.size:need] = angles
        self.size = need
        np.minimum.at(self.rmin, cells, angles)
        np.maximum.at(self.rmax, cells, angles)
        self._csr = None

    def remove(self, rows: np.ndarray) -> None:
        """Drop ``rows`` (the annuli stay as wide: still a valid bound)."""
        keep = ~np.isin(self.rows[:self.size], rows)
        n = int(keep.sum())
        for a in (self.rows, self.cell, self.angle):
            a[:n] = a[:self.size][keep]
        self.size = n
        self._csr = None

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cell pointers, member rows, member angles) in cell order."""
        if self._csr is None:
            ptr, order = _by_cell(self.cell[:self.size], self.angle[:self.size], self.nlist)
            self._csr = (ptr, self.rows[order], self.angle[order])
        return self._csr


def exceeds(sims: np.ndarray, xq: np.ndarray, xs: np.ndarray, threshold: float) -> np.ndarray:
    """``sims > threshold`` for ``sims = xq @ xs.T`` (float32), cosines near the threshold decided in float64.

    A float32 product's last bits depend on how BLAS blocks it; deciding the border band in float64 (exact
    products of float32 inputs, a 53-bit sum) makes every verdict a function of the two vectors alone.
    """
    upper = np.float32(threshold + BORDER_BAND)
    out = sims > upper
    qi, si = np.nonzero((sims >= np.float32(threshold - BORDER_BAND)) & (sims <= upper))
    if len(qi):
        exact = np.einsum("ij,ij->i", xq[qi].astype(np.float64), xs[si].astype(np.float64))
        out[qi, si] = exact > threshold
    return out


def cell_groups(sims: np.ndarray | None, n: int, rmin: np.ndarray, rmax: np.ndarray, present: np.ndarray,
                theta: float, skip: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(cell, queries)`` for every cell that may hold a vector within angle ``theta`` of those queries.

    The annulus test ``rmin - theta <= angle(q, centroid) <= rmax + theta`` (plus :data:`ANGLE_MARGIN`) is
    evaluated on cosines, so no arccos is taken over the (queries x cells) matrix. ``skip``: leave out the
    (query, cell) pairs that already pass at that smaller angle (a widening second pass). With one cell
    (``sims`` None) every query scans it.
    """
    if sims is None:
        if present[0] and skip is None:
            yield 0, np.arange(n, dtype=np.int64)
        return
    lo, hi = cosine_window(rmin, rmax, present, theta)
    mask = (sims >= lo) & (sims <= hi)
    if skip is not None:
        lo0, hi0 = cosine_window(rmin, rmax, present, skip)
        mask &= ~((sims >= lo0) & (sims <= hi0))
    cells, queries = np.nonzero(mask.T)
    if not len(cells):
        return
    cuts = np.flatnonzero(np.diff(cells)) + 1
    for part_c, part_q in zip(np.split(cells, cuts), np.split(queries, cuts), strict=True):
        yield int(part_c[0]), part_q


def cosine_window(rmin: np.ndarray, rmax: np.ndarray, present: np.ndarray, theta: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the cosine range ``[lo, hi]`` of ``angle(q, centroid)`` that cell's annulus can reach.

    Bounds that reach the ends of [0, pi] become +-2, beyond any float32 cosine, so rounding never drops a
    query; absent cells get an empty range.
    """
    far = theta + np.where(present, rmax, 0.0) + ANGLE_MARGIN
    near = np.where(present, rmin, 0.0) - theta - ANGLE_MARGIN
    lo = np.where(far >= math.pi, -2.0, np.cos(np.minimum(far, math.pi)))
    hi = np.where(near <= 0.0, 2.0, np.cos(np.maximum(near, 0.0)))
    lo = np.where(present, lo, 3.0)
    return lo.astype(np.float32), hi.astype(np.float32)


def _members_by_cell(home: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(home, kind="stable")
    return order, np.searchsorted(home[order], np.arange(nlist + 1))


def _radii(home: np.ndarray, angle: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    rmin = np.full(nlist, np.inf)
    rmax = np.full(nlist, -np.inf)
    np.minimum.at(rmin, home, angle)
    np.maximum.at(rmax, home, angle)
    return rmin, rmax


def _blocks(n_queries: int, n_stored: int) -> Iterator[tuple[int, int]]:
    """Slices of the stored side so that one product holds at most :data:`MAX_PRODUCT_ELEMENTS`."""
    step = max(1, MAX_PRODUCT_ELEMENTS // max(n_queries, 1))
    for lo in range(0, n_stored, step):
        yield lo, min(lo + step, n_stored)


def _grow(buf: np.ndarray, size: int, shape: tuple[int, ...]) -> np.ndarray:
    grown = np.empty(shape, dtype=buf.dtype)
    grown[:size] = buf[:size]
    return grown


def _csr(pair_q: list[np.ndarray], pair_b: list[np.ndarray], n: int) -> dict[str, np.ndarray]:
    """In-batch neighbour lists without self-pairs, as CSR over batch positions (symmetrised)."""
    q = np.concatenate(pair_q) if pair_q else np.zeros(0, dtype=np.int64)
    b = np.concatenate(pair_b) if pair_b else np.zeros(0, dtype=np.int64)
    keep = q != b
    q, b = np.concatenate([q[keep], b[keep]]), np.concatenate([b[keep], q[keep]])
    order = np.lexsort((b, q))
    q, b = q[order], b[order]
    if len(q):
        first = np.ones(len(q), dtype=bool)
        first[1:] = (q[1:] != q[:-1]) | (b[1:] != b[:-1])
        q, b = q[first], b[first]
    counts = np.bincount(q, minlength=n)
    return {"lims": np.concatenate(([0], np.cumsum(counts))).astype(np.int64), "nbrs": b.astype(np.int64)}


def resolve_mode(params: DiversityParams, n: int) -> str:
    """``auto`` means exact up to ``exact_max_rows`` candidates, IVF beyond (same result, less work)."""
    if params.search != "auto":
        return params.search
    return "exact" if n <= params.exact_max_rows else "ivf"


def resolve_nlist(params: DiversityParams, n: int) -> int:
    """``nlist``, or at most ``NLIST_PER_SQRT_ROWS * sqrt(n)`` cells when 0; never more than the sample can support.

    Unlike a fixed-nprobe IVF, whose work per query grows with the probed cells, exact pruning needs cells
    tight enough that a query's annulus test rejects most of them, and one cell per natural cluster of the
    data: a cluster left without a cell spreads its rows over wide cells that every query must scan. With 0,
    this is the cap; the seeding (:func:`train_centroids`) sizes the cells to the data below it (on the 1M-row
    benchmark table, 2,000 sources x 7 distortions: 3,204 cells under a cap of 4,330, about 200 pair products
    per greedy query; a cap of 2,598 left clusters uncovered and gave about 1,100).
    """
    nlist = params.nlist or int(round(NLIST_PER_SQRT_ROWS * np.sqrt(n)))
    return int(max(1, min(nlist, n // params.train_points_per_list)))


def train_centroids(emb: np.ndarray, candidates: np.ndarray, nlist: int, params: DiversityParams,
                    seed: int) -> np.ndarray:
    """Unit centroids of spherical k-means on a seeded sample of ``nlist * train_points_per_list`` candidates.

    Seeding (:func:`_seed_cells`) starts a cell at every sampled row that is less similar to all earlier seeds
    than almost any random pair is (:data:`SEED_QUANTILE`), up to ``nlist`` seeds: each natural cluster of the
    data gets its own cell and none is left to share a cell with unrelated rows (random k-means seeds leave a
    third of the clusters uncovered, and the rows of those land in wide catch-all cells that every query must
    scan). At most ``train_iters`` Lloyd iterations follow, stopping once at most :data:`STABLE_FRACTION` of the
    sampled rows change cell (the cells only need to be roughly right: any assignment keeps the search exact).
    """
    size = min(len(candidates), nlist * params.train_points_per_list, max(nlist, MAX_TRAIN_POINTS))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(candidates, size=size, replace=False))
    x = np.ascontiguousarray(emb[sample][rng.permutation(size)], dtype=np.float32)
    centroids = _seed_cells(x[:SEED_ROWS], nlist)
    home = np.full(len(x), -1, dtype=np.int64)
    for _ in range(params.train_iters):
        new = _assign(x, centroids)
        moved = int((new != home).sum())
        home = new
        if moved <= STABLE_FRACTION * len(x):
            break
        order = np.argsort(home, kind="stable")
        cells, starts = np.unique(home[order], return_index=True)
        sums = np.add.reduceat(x[order].astype(np.float64), starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        ok = norms[:, 0] > 0
        centroids[cells[ok]] = (sums[ok] / norms[ok]).astype(np.float32)
    return np.ascontiguousarray(centroids)


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of every row (blocks of bounded memory)."""
    step = max(1, MAX_PRODUCT_ELEMENTS // len(centroids))
    return np.concatenate([np.argmax(x[lo:lo + step] @ centroids.T, axis=1) for lo in range(0, len(x), step)])


def _seed_cells(x: np.ndarray, nlist: int) -> np.ndarray:
    """Up to ``nlist`` seeds, in ``x``'s order: a row whose cosine to every earlier seed is below ``tau``.

    ``tau`` is the :data:`SEED_QUANTILE` quantile of the cosines between two disjoint halves of the first
    :data:`SEED_PAIRS` rows. Fewer than ``nlist`` seeds when the data has fewer clusters (the cells are sized
    to the data); when the data needs more, the first ``nlist`` are kept.
    """
    half = min(SEED_PAIRS, len(x) // 2)
    tau = float(np.quantile(x[:half] @ x[half:2 * half].T, SEED_QUANTILE)) if half else 1.0
    seeds = np.zeros(nlist, dtype=np.int64)
    count = 0
    for lo in range(0, len(x), SEED_BLOCK):
        block = x[lo:lo + SEED_BLOCK]
        near = (block @ x[seeds[:count]].T).max(axis=1) if count else np.full(len(block), -np.inf)
        far = np.flatnonzero(near < tau)
        if len(far):
            count = _pick_seeds(block[far] @ block[far].T, tau, lo + far, seeds, count)
        if count == nlist:
            break
    return x[seeds[:max(count, 1)]].copy()


@numba.njit(cache=True)
def _pick_seeds(gram, tau, rows, seeds, count):  # noqa: ANN001, ANN202
    """Sequential seeding within a block: row ``i`` becomes a seed unless a new seed before it is too similar."""
    local = np.empty(len(rows), dtype=np.int64)
    n_local = 0
    for i in range(len(rows)):
        if count == len(seeds):
            break
        ok = True
        for k in range(n_local):
            if gram[i, local[k]] >= tau:
                ok = False
                break
        if ok:
            local[n_local] = i
            n_local += 1
            seeds[count] = rows[i]
            count += 1
    return count


def exact_pairs(x: np.ndarray, threshold: float) -> np.ndarray:
    """All ordered pairs ``(i, j)``, ``i != j``, of rows of ``x`` with cosine > ``threshold`` (faiss, exact)."""
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, _, labels = index.range_search(np.ascontiguousarray(x), float(threshold))
    owner = np.repeat(np.arange(len(x)), np.diff(lims.astype(np.int64)))
    keep = owner != labels
    return np.stack([owner[keep], labels[keep]], axis=1)


@dataclass
class SelectionCheck:
    """The exact all-pairs check of a final selection (see :func:`check_selection`)."""

    method: str
    violations: np.ndarray
    """(k, 2) rows ``(earlier, later)`` in selection order, cosine above the threshold."""
    nn_cosine_max: float
    nn_cosine_max_exact: bool
    threshold: float
    nn_cosine_mean: float
    nn_sample: int
    pair_products: int
    seconds: float

    def summary(self) -> dict:
        """Everything but the time (select.json must be byte-identical across reruns)."""
        return {"check": self.method, "check_pair_products": self.pair_products, "violations_found": int(len(self.violations)),
                "nn_cosine_max": self.nn_cosine_max, "nn_cosine_max_exact": self.nn_cosine_max_exact,
                "nn_cosine_max_upper_bound": self.nn_cosine_max if self.nn_cosine_max_exact else
                max(self.nn_cosine_max, self.threshold),
                "nn_cosine_mean": self.nn_cosine_mean, "nn_sample": self.nn_sample}


def check_selection(emb: np.ndarray, rows: np.ndarray, threshold: float, centroids: np.ndarray | None,
                    sample: int, seed: int, chunk: int, max_products: float = math.inf,
                    located: tuple[np.ndarray, np.ndarray] | None = None) -> SelectionCheck:
    """Check the selected ``rows`` (in selection order) for pairs above ``threshold``.

    Full check: independent of the greedy's batching, the selection is indexed from scratch (same centroids,
    static cells) and every row is a query against the rows selected before it, in blocks of ``chunk``
    rows. The largest cosine over the scanned pairs is exact when it exceeds the threshold or lies within
    :data:`NN_MAX_TOLERANCE` of it; otherwise a second pass widens the search to that cosine when it is cheap
    enough (:data:`REFINE_WORK_FACTOR`). ``nn_cosine_max_exact`` says which; when False the true maximum lies
    between ``nn_cosine_max`` and the threshold.

    The full check costs about as much as the greedy's own exact search. When a sampled estimate says it
    would compute more than ``max_products`` pair products (high-intrinsic-dimension embeddings, where the
    cells prune little), the selection is instead audited: a seeded sample of rows against every selected
    row by brute force, a code path that shares nothing with the pruning; the method string says which ran.
    ``nn_cosine_mean`` is always the exact mean nearest-neighbour cosine of that seeded sample. ``located``: each
    row's home cell and its angle to that centroid when already known (the greedy located every selected row;
    any assignment with its true angles keeps the bounds valid), else computed here.
    """
    start = time.perf_counter()
    cells = f"{len(centroids)} cells pruned by angular annuli" if centroids is not None else "brute force"
    if len(rows) < 2:
        return SelectionCheck("nothing to check", np.zeros((0, 2), np.int64), math.nan, True, threshold,
                              math.nan, 0, 0, time.perf_counter() - start)
    static = _StaticCells(emb, rows, centroids, located)
    theta = float(np.arccos(np.clip(threshold, -1.0, 1.0)))
    audit = _audit(emb, rows, sample, seed, threshold)
    if static.estimate(theta, seed) > max_products:
        method = (f"audit: {audit.n} seeded rows against all {len(rows)} selected rows by brute force (the greedy's "
                  f"search is exact by construction; a full check was estimated above {max_products:.3g} products)")
        return SelectionCheck(method, audit.violations, audit.top, False, threshold, audit.mean, audit.n,
                              audit.n * len(rows), time.perf_counter() - start)
    pairs, best, work = static.scan(theta, threshold, chunk, None)
    top = max(float(best.max()), audit.top)
    exact_max = centroids is None or top > threshold or top >= threshold - NN_MAX_TOLERANCE
    if not exact_max and top > -1.0:
        wider = float(np.arccos(np.clip(top, -1.0, 1.0)))
        if static.estimate(wider, seed) <= REFINE_WORK_FACTOR * max(work, 1):
            _, best2, work2 = static.scan(wider, top, chunk, theta)
            top, exact_max = max(top, float(best2.max())), True
            work += work2
    violations = (np.unique(np.sort(pairs, axis=1), axis=0) if len(pairs) else np.zeros((0, 2), np.int64))
    return SelectionCheck(f"exact all-pairs range search, {cells}", violations, top, exact_max, threshold,
                          audit.mean, audit.n, work, time.perf_counter() - start)


class _StaticCells:
    """The selected rows grouped by home cell, with each cell's annulus, for the all-pairs check."""

    def __init__(self, emb: np.ndarray, rows: np.ndarray, centroids: np.ndarray | None,
                 cells: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.emb, self.rows, self.centroids = emb, rows, centroids
        nlist = 1 if centroids is None else len(centroids)
        home = np.zeros(len(rows), dtype=np.int64)
        angle = np.zeros(len(rows))
        self._vectors: np.ndarray | None = None
        if centroids is not None and cells is not None:
            home, angle = cells
        elif centroids is not None:
            for lo in range(0, len(rows), max(1, MAX_PRODUCT_ELEMENTS // nlist)):
                sims = emb[rows[lo:lo + MAX_PRODUCT_ELEMENTS // nlist]] @ centroids.T
                h = np.argmax(sims, axis=1)
                home[lo:lo + len(h)] = h
                angle[lo:lo + len(h)] = np.arccos(np.clip(sims[np.arange(len(h)), h].astype(np.float64), -1, 1))
        if centroids is None:
            self.order, self.bounds = _members_by_cell(home, nlist)
        else:  # the ring scans need each cell's members sorted by angle
            self.bounds, self.order = _by_cell(home, angle, nlist)
        self.rmin, self.rmax = _radii(home, angle, nlist)
        self.present = np.diff(self.bounds) > 0
        self.sizes = np.diff(self.bounds)
        self.member_rows = rows[self.order]
        self.member_angle = angle[self.order]

    def member_vectors(self) -> np.ndarray:
        """The selected vectors in cell order (one contiguous copy, made once: the scans read it cell by cell)."""
        if self._vectors is None:
            self._vectors = np.ascontiguousarray(self.emb[self.member_rows])
        return self._vectors

    def _sims(self, x: np.ndarray) -> np.ndarray | None:
        return None if self.centroids is None else x @ self.centroids.T

    def estimate(self, theta: float, seed: int) -> float:
        """Pair products a scan at ``theta`` would compute, from a seeded sample of :data:`ESTIMATE_ROWS` rows."""
        if self.centroids is None:
            return len(self.rows) ** 2 / 2
        picks = np.random.default_rng(seed).choice(len(self.rows), size=min(ESTIMATE_ROWS, len(self.rows)),
                                                   replace=False)
        sims = self._sims(np.ascontiguousarray(self.emb[self.rows[picks]]))
        lo, hi = cosine_window(self.rmin, self.rmax, self.present, theta)
        cptr, _, cang = _cell_queries(sims, lo, hi)
        per_row = _ring_count(cptr, cang, self.bounds, self.member_angle, theta + ANGLE_MARGIN) / len(picks)
        return float(per_row) * len(self.rows) / 2

    def scan(self, theta: float, threshold: float, chunk: int, skip: float | None
             ) -> tuple[np.ndarray, np.ndarray, int]:
        """Pairs (selection positions) above ``threshold`` and each row's largest scanned cosine to another row."""
        if self.centroids is not None:
            return self._scan_rings(theta, threshold, chunk)
        best = np.full(len(self.rows), -1.0)
        pairs: list[np.ndarray] = []
        work = 0
        for start in range(0, len(self.rows), chunk):
            q_pos = np.arange(start, min(start + chunk, len(self.rows)))
            x = np.ascontiguousarray(self.emb[self.rows[q_pos]])
            for cell, qs in cell_groups(self._sims(x), len(q_pos), self.rmin, self.rmax, self.present, theta, skip):
                members = self.order[self.bounds[cell]:self.bounds[cell + 1]]
                # each unordered pair once: a query meets only the members selected before it (the bound is
                # symmetric, so the later row's query reaches the earlier row's cell)
                members = members[:np.searchsorted(members, q_pos[qs[-1]])]
                for lo, hi in _blocks(len(qs), len(members)):
                    m = members[lo:hi]
                    xs = np.ascontiguousarray(self.emb[self.rows[m]])
                    sims = x[qs] @ xs.T
                    sims[q_pos[qs][:, None] <= m[None, :]] = -2.0
                    work += sims.size
                    np.maximum.at(best, q_pos[qs], sims.max(axis=1).astype(np.float64))
                    np.maximum.at(best, m, sims.max(axis=0).astype(np.float64))
                    qi, mi = np.nonzero(exceeds(sims, x[qs], xs, threshold))
                    if len(qi):
                        pairs.append(np.stack([q_pos[qs][qi], m[mi]], axis=1))
        found = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
        return found, best, work


    def _scan_rings(self, theta: float, threshold: float, chunk: int) -> tuple[np.ndarray, np.ndarray, int]:
        """:meth:`scan` with cells: each block of queries meets the earlier members of its windowed cells whose
        angle to the centroid is within ``theta`` of its own (compiled, see :func:`_ring_pairs`)."""
        width = theta + ANGLE_MARGIN
        upper, lower = np.float32(threshold + BORDER_BAND), np.float32(threshold - BORDER_BAND)
        lo, hi = cosine_window(self.rmin, self.rmax, self.present, theta)
        best = np.full(len(self.rows), -1.0)
        member_best = np.full(len(self.rows), -2.0, dtype=np.float32)
        pairs: list[np.ndarray] = []
        work = 0
        for start in range(0, len(self.rows), chunk):
            q_pos = np.arange(start, min(start + chunk, len(self.rows)))
            x = np.ascontiguousarray(self.emb[self.rows[q_pos]])
            cptr, cq, cang = _cell_queries(self._sims(x), lo, hi)
            q_best = np.full(len(q_pos), -2.0, dtype=np.float32)
            out_q, out_m, w = _ring_pairs(x, q_pos, cptr, cq, cang, self.bounds, self.member_vectors(), self.order,
                                          self.member_angle, width, upper, lower, threshold, q_best, member_best)
            work += w
            best[q_pos] = np.maximum(best[q_pos], q_best.astype(np.float64))
            if len(out_q):
                pairs.append(np.stack([q_pos[out_q], self.order[out_m]], axis=1))
        best[self.order] = np.maximum(best[self.order], member_best.astype(np.float64))
        found = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
        return found, best, work


@dataclass
class _Audit:
    mean: float
    top: float
    n: int
    violations: np.ndarray


def _audit(emb: np.ndarray, rows: np.ndarray, sample: int, seed: int, threshold: float) -> _Audit:
    """A seeded sample of selected rows against every selected row, by brute force (blocked products).

    Gives the sample's exact nearest-neighbour cosines and every pair above ``threshold`` that involves a
    sampled row. At most :data:`STATS_MAX_PAIRS` products: the sample shrinks on large selections.
    """
    size = min(sample, len(rows), max(1, STATS_MAX_PAIRS // len(rows)))
    if size == 0:
        return _Audit(math.nan, -1.0, 0, np.zeros((0, 2), np.int64))
    probe = np.sort(np.random.default_rng(seed).choice(len(rows), size=size, replace=False))
    xq = np.ascontiguousarray(emb[rows[probe]])
    best = np.full(size, -1.0, dtype=np.float32)
    found = []
    for lo, hi in _blocks(size, len(rows)):
        xs = np.ascontiguousarray(emb[rows[lo:hi]])
        sims = xq @ xs.T
        own = (probe >= lo) & (probe < hi)
        sims[np.flatnonzero(own), probe[own] - lo] = -2.0
        np.maximum(best, sims.max(axis=1), out=best)
        qi, si = np.nonzero(exceeds(sims, xq, xs, threshold))
        if len(qi):
            found.append(np.sort(np.stack([probe[qi], lo + si], axis=1), axis=1))
    violations = np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), np.int64)
    return _Audit(float(best.mean()), float(best.max()), int(size), violations)


def pair_recall(emb: np.ndarray, candidates: np.ndarray, sample: np.ndarray, params: DiversityParams,
                seed: int) -> dict[str, float]:
    """Near-duplicate pairs within ``sample`` rows found by the index a selection would build, against faiss.

    Every query is exact (module docstring), so recall is 1 by construction; this measures it anyway, and the
    pair products the annulus pruning needed against brute force's (the work the cells save).
    """
    truth = exact_pairs(np.ascontiguousarray(emb[sample]), params.threshold)
    index = NeighbourIndex(emb, candidates, params, seed)
    res = index.query(sample)
    got = {(q, int(b)) for q in range(len(sample)) for b in res.nbrs[res.lims[q]:res.lims[q + 1]]}
    found = sum((int(a), int(b)) in got for a, b in truth)
    return {"sample_rows": int(len(sample)), "exact_pairs": int(len(truth)), "found_pairs": int(found),
            "recall": found / len(truth) if len(truth) else 1.0, "mode": index.mode, "nlist": index.nlist,
            "pair_products": index.products, "brute_force_products": int(len(sample)) ** 2}

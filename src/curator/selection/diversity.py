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
centroids. Products and scans run on ``select.threads`` threads in blocks fixed by the data (row blocks of
:data:`SIMS_BLOCK_ROWS`, :data:`CELL_GROUPS` cell ranges; ``workers.py``), so the selection and every figure,
pair products included, are the same for any thread count.

After the greedy, :func:`check_selection` verifies the final selection independently of the greedy's
dynamic state (an exact all-pairs range search over the selected rows with the same bounds, every query
against static cells built from the final selection, no early stop; the cells each row's query reached are
the ones the greedy recorded, which spares a second product with the centroids) and measures the
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

from curator.selection import workers
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
STABLE_FRACTION = 0.15
"""Lloyd iterations stop after the update that follows an assignment moving at most this share of the sample.
On the 1M-row benchmark table the second assignment moves 11% of the sample and a third would move 0.4%: the
cells after the second update are the ones a 10% rule testing before the update kept, without the third
assignment it spent only to see that little moved (about 1 s of products). Stopping before the second update
instead more than doubled the pair products of the greedy and the check (1.35e8 against 5.9e7)."""
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
RING_SHARE_ROWS = 4096
"""Candidates of the seeded sample whose pairs estimate the share the rings would scan (:func:`ring_share`)."""
AUTO_MAX_RING_SHARE = 0.05
"""``search: auto`` keeps the k-means cells when their rings scan at most this share of all pairs, else it searches
exactly in BLAS blocks. A ring product is a compiled loop over one pair (plus the queries' products with every
centroid); a BLAS block computes a product several times faster, so rings that prune little lose. Measured
shares: 0.0009 on the 1M-row pair benchmark table and 0.017 on its dense latent-16 variant (the cells win), 0.37
on the 200k-source table whose speakers' rows lie 51 degrees from their centre in 256 dimensions, where the
annulus bound cannot separate them (the exact blocks win: see the README's figures)."""
CHECK_WORK_FACTOR = 2.0
"""A full check runs when it is estimated at most this many times the greedy's own pair products; beyond,
the selection is audited on a sample (see :func:`check_selection`). The greedy stops a query at its first
hit and the check does not, so the full check's products run near the greedy's (on the 1M-row benchmark
table: 5.4e7 against 5.9e7); a factor of 2 keeps it full there with room, and the audit for embeddings whose
cells prune little."""
SIMS_BLOCK_ROWS = 1024
"""Rows per block of a (rows x cells) cosine product: one single-threaded BLAS call per block, the blocks spread
over ``select.threads`` threads (``workers.py``). The block shape depends on the data alone, so every cosine has
the same bits for any thread count (a float32 product's last bits follow its blocking); 1,024 rows x 3,204
cells is 13 MB."""
CELL_GROUPS = 16
"""The ring scans run on this many contiguous cell ranges (balanced by their (query, cell) entries), each with its
own early-stop state: the unit of parallel work, fixed so the pair products counted are the same for any
thread count."""
LOCATE_ROWS = 1 << 16
"""Rows located at once when only their home cells are wanted (their cosines are dropped block by block)."""
WINDOW_ENTRIES_PER_ROW = 64
"""First capacity of a row block's window entries, per row (doubled when exceeded; about 33 per queried row on
the 1M-row benchmark table)."""
WINDOW_ENTRY_BYTES = 8
"""A recorded window entry: its query (int32) and angle (float32)."""
BYTES_PER_MB = 1 << 20
IN_STORE, IN_BATCH = 1, 2
"""Flags of a (query, cell) entry: the cell is in the query's window over the stored rows / over its batch."""
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

    def __init__(self, emb: np.ndarray, candidates: np.ndarray, params: DiversityParams, seed: int,
                 cells: Cells | None = None) -> None:
        """``cells``: :func:`index_cells` of the same candidates, when computed beforehand (e.g. beside the
        ranking); else computed here."""
        self.emb = emb
        self.threshold = float(params.threshold)
        self.theta = float(np.arccos(np.clip(self.threshold, -1.0, 1.0)))
        cells = cells if cells is not None else index_cells(emb, candidates, params, seed)
        self.mode, self.centroids, self.ring_share = cells.mode, cells.centroids, cells.ring_share
        self.nlist = 1 if self.centroids is None else len(self.centroids)  # seeding may find fewer than the cap
        self.cells = CellStore(self.nlist, emb.shape[1]) if self.centroids is None else None
        self.ring = RingStore(self.nlist) if self.centroids is not None else None
        self.width = self.theta + ANGLE_MARGIN
        self.upper = np.float32(self.threshold + BORDER_BAND)
        self.lower = np.float32(self.threshold - BORDER_BAND)
        self.queried = 0
        self.products = 0
        self._home = np.zeros(0, dtype=np.int64)
        self._angle = np.zeros(0)
        self._entries: Entries | None = None
        self.windows: list[BatchWindows] | None = []
        """The window entries of every selected row, as its batch was queried (see :meth:`windows_for`); None once
        they outgrow ``window_memory_mb``."""
        self._window_budget = int(params.window_memory_mb * BYTES_PER_MB) // WINDOW_ENTRY_BYTES
        self._window_entries = 0

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]:
        """Home cell (nearest centroid), angle to it, and the cosines to every centroid in row blocks of
        :data:`SIMS_BLOCK_ROWS` (None: one cell)."""
        if self.centroids is None:
            return np.zeros(len(x), dtype=np.int64), np.zeros(len(x)), None
        return locate_blocks(x, self.centroids)

    def query(self, rows: np.ndarray) -> ChunkNeighbours:
        """Near-duplicates of ``rows`` (distinct) among the selected rows and among ``rows`` themselves."""
        x = np.ascontiguousarray(self.emb[rows])
        self.queried += len(rows)
        self._entries = None
        home, angle, sims = self.locate(x)
        self._home, self._angle = home, angle
        if sims is not None:
            return self._query_cells(rows, x, home, angle, sims)
        hit = np.zeros(len(rows), dtype=bool)
        cells = self.cells
        for cell, qs in one_cell(len(rows), cells.sizes > 0):
            todo = qs[~hit[qs]]
            if len(todo):
                hit[todo] = self._any_above(x[todo], cells.vectors(cell))
        members, bounds = _members_by_cell(home, self.nlist)
        pair_q, pair_b = [], []
        for cell, qs in one_cell(len(rows), np.diff(bounds) > 0):
            mine = members[bounds[cell]:bounds[cell + 1]]
            xq, xm = x[qs], x[mine]

            def block(span: tuple[int, int], xq: np.ndarray = xq, xm: np.ndarray = xm) -> tuple[np.ndarray, ...]:
                return np.nonzero(exceeds(xq @ xm[span[0]:span[1]].T, xq, xm[span[0]:span[1]], self.threshold))

            spans = list(_blocks(len(qs), len(mine)))
            for (lo, _), (qi, bi) in zip(spans, workers.blocks(block, spans), strict=True):
                pair_q.append(qs[qi])
                pair_b.append(mine[lo + bi])
            self.products += len(qs) * len(mine)
        return ChunkNeighbours(hit=hit, **_csr(pair_q, pair_b, len(rows)))

    def _query_cells(self, rows: np.ndarray, x: np.ndarray, home: np.ndarray, angle: np.ndarray,
                     sims: list[np.ndarray]) -> ChunkNeighbours:
        """:meth:`query` with k-means cells: compiled ring scans over cell groups (module docstring)."""
        store = self.ring
        s_lo, s_hi = cosine_window(store.rmin, store.rmax, np.isfinite(store.rmax), self.theta)
        bptr, order = _by_cell(home, angle, self.nlist)
        rmin, rmax = _radii(home, angle, self.nlist)
        b_lo, b_hi = cosine_window(rmin, rmax, np.diff(bptr) > 0, self.theta)
        entries = window_entries(sims, s_lo, s_hi, b_lo, b_hi, self.nlist)
        self._entries = entries
        hit = np.zeros(len(rows), dtype=bool)
        if store.size:
            mptr, mrow, mang = store.csr()
            hit, work = ring_hits(x, entries, mptr, mrow, mang, self.emb, self.width, self.upper, self.lower,
                                  self.threshold)
            self.products += work
        # every ordered pair of distinct batch rows (member key 0 < query key 1); self-pairs are dropped by _csr
        best = np.full(len(rows), -2.0, np.float32)
        out_q, out_m, work = ring_pairs(x, np.ones(len(rows), dtype=np.int64), entries, IN_BATCH, bptr, x[order],
                                        np.zeros(len(rows), dtype=np.int64), angle[order], self.width, self.upper,
                                        self.lower, self.threshold, best, np.full(len(rows), -2.0, np.float32))
        self.products += work
        return ChunkNeighbours(hit=hit, **_csr([out_q], [order[out_m]], len(rows)))

    def _any_above(self, xq: np.ndarray, stored: np.ndarray) -> np.ndarray:
        """Which queries have a stored row above the threshold: BLAS blocks of the stored rows, on the selection's
        threads (fixed blocks: the same answer and products for any thread count)."""
        def block(span: tuple[int, int]) -> np.ndarray:
            part = stored[span[0]:span[1]]
            return exceeds(xq @ part.T, xq, part, self.threshold).any(axis=1)

        found = np.zeros(len(xq), dtype=bool)
        for part in workers.blocks(block, list(_blocks(len(xq), len(stored)))):
            found |= part
        self.products += len(xq) * len(stored)
        return found

    def add(self, rows: np.ndarray, positions: np.ndarray) -> None:
        """Store newly selected ``rows``; ``positions`` are their indices in the last :meth:`query` batch."""
        if len(rows) and self.ring is not None:
            self.ring.append(self._home[positions], rows, self._angle[positions])
            if self._entries is not None and self.windows is not None:
                ptr, query, angle = _keep_queries(self._entries.ptr, self._entries.query, self._entries.angle,
                                                  np.asarray(positions, dtype=np.int64), len(self._home))
                self._window_entries += len(query)
                if self._window_entries > self._window_budget:
                    self.windows = None  # over budget: the check computes the windows itself
                else:
                    self.windows.append(BatchWindows(np.asarray(rows, dtype=np.int64), ptr, query, angle))
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

    def windows_for(self, picked: np.ndarray) -> list[BatchWindows] | None:
        """The recorded windows of the selection ``picked`` (rows in selection order), queries renumbered to
        selection positions; None unless every picked row has one (then the check locates the rows itself).

        A row's windows were taken when its batch was queried, over the rows stored then and its own batch:
        every row selected before it was one or the other, so they hold every cell where an earlier pick can lie
        within the threshold (the check's own bound); the check needs no second product with the centroids.
        """
        if self.ring is None or not self.windows:
            return None
        position = np.full(len(self.emb), -1, dtype=np.int64)
        position[picked] = np.arange(len(picked))
        out, covered = [], 0
        for w in self.windows:
            pos = position[w.rows]
            if (pos < 0).any():  # a repair dropped some of this batch's picks
                keep = np.flatnonzero(pos >= 0)
                ptr, query, angle = _keep_queries(w.ptr, w.query, w.angle, keep, len(w.rows))
                w, pos = BatchWindows(w.rows[keep], ptr, query, angle), pos[keep]
            out.append(BatchWindows(pos, w.ptr, w.query, w.angle))
            covered += len(pos)
        return out if covered == len(picked) else None


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


@numba.njit(cache=True, fastmath=True, nogil=True)
def _dot32(a, i, b, j):  # noqa: ANN001, ANN202
    """Float32 dot product of rows ``a[i]`` and ``b[j]`` (vectorised; its rounding is settled by the float64 border
    re-decision). Indexed rather than passed as row views: the ring scans ran 22% faster so, with the same bits."""
    acc = np.float32(0.0)
    for k in range(a.shape[1]):
        acc += a[i, k] * b[j, k]
    return acc


@numba.njit(cache=True, nogil=True)
def _above(s, a, i, b, j, upper, lower, threshold):  # noqa: ANN001, ANN202
    """:func:`exceeds` for rows ``a[i]`` and ``b[j]``: their float32 cosine ``s`` decided outside the border band,
    float64 inside it."""
    if s > upper:
        return True
    if s < lower:
        return False
    acc = 0.0
    for k in range(a.shape[1]):
        acc += np.float64(a[i, k]) * np.float64(b[j, k])
    return acc > threshold


@dataclass
class Entries:
    """The (query, cell) pairs inside a window, cell-major (CSR over cells), queries ascending within a cell."""

    ptr: np.ndarray
    query: np.ndarray
    angle: np.ndarray
    """The query's angle to the cell's centroid (float64 of its float32 cosine)."""
    flag: np.ndarray
    """:data:`IN_STORE` / :data:`IN_BATCH` bits: which window(s) the pair is in."""


@dataclass
class BatchWindows:
    """The window entries of the rows one greedy batch selected: ``rows`` (pool rows, or selection positions
    in :meth:`NeighbourIndex.windows_for`), and cell-major entries whose ``query`` indexes ``rows``."""

    rows: np.ndarray
    ptr: np.ndarray
    query: np.ndarray
    angle: np.ndarray
    """float32: far finer than :data:`ANGLE_MARGIN`, half the memory of the selection's windows."""


@numba.njit(cache=True, nogil=True)
def _keep_queries(ptr, query, angle, keep, n):  # noqa: ANN001, ANN202
    """The entries of the queries ``keep`` (renumbered 0..len(keep)-1), still cell-major, angles as float32."""
    local = np.full(n, -1, dtype=np.int64)
    for i in range(len(keep)):
        local[keep[i]] = i
    nlist = len(ptr) - 1
    out_ptr = np.zeros(nlist + 1, dtype=np.int64)
    count = 0
    for c in range(nlist):
        for k in range(ptr[c], ptr[c + 1]):
            if local[query[k]] >= 0:
                count += 1
        out_ptr[c + 1] = count
    out_q = np.empty(count, dtype=np.int32)
    out_a = np.empty(count, dtype=np.float32)
    j = 0
    for k in range(ptr[nlist]):
        q = local[query[k]]
        if q >= 0:
            out_q[j] = q
            out_a[j] = angle[k]
            j += 1
    return out_ptr, out_q, out_a


def centroid_sims(x: np.ndarray, centroids: np.ndarray) -> list[np.ndarray]:
    """The cosines of ``x``'s rows to every centroid, in row blocks of :data:`SIMS_BLOCK_ROWS`."""
    return workers.blocks(lambda span: x[span[0]:span[1]] @ centroids.T, workers.spans(len(x), SIMS_BLOCK_ROWS))


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Home cell (nearest centroid) of every row of ``x`` and the angle to it (row blocks, nothing kept)."""
    parts = workers.blocks(lambda span: _home_angle(x[span[0]:span[1]] @ centroids.T),
                           workers.spans(len(x), SIMS_BLOCK_ROWS))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def locate_blocks(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Home cell (nearest centroid), the angle to it, and the cosines to every centroid (row blocks)."""
    def one(span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sims = x[span[0]:span[1]] @ centroids.T
        return (sims, *_home_angle(sims))

    parts = workers.blocks(one, workers.spans(len(x), SIMS_BLOCK_ROWS))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0), []
    return (np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]), [p[0] for p in parts])


def window_entries(sims: list[np.ndarray], lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray | None,
                   hi_b: np.ndarray | None, nlist: int) -> Entries:
    """Cell-major entries of the (query, cell) cosines inside window a (flag :data:`IN_STORE`) or b
    (:data:`IN_BATCH`); ``sims`` are the row blocks of :func:`locate_blocks`."""
    if lo_b is None or hi_b is None:
        lo_b, hi_b = np.full(nlist, 3.0, np.float32), np.full(nlist, -3.0, np.float32)
    starts = np.cumsum([0] + [len(b) for b in sims[:-1]])
    parts = workers.blocks(lambda k: _window_coo(sims[k], int(starts[k]), lo_a, hi_a, lo_b, hi_b),
                           range(len(sims)))
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return Entries(np.zeros(nlist + 1, dtype=np.int64), z, np.zeros(0), np.zeros(0, np.uint8))
    q, cell, ang, flag = (np.concatenate([p[i] for p in parts]) for i in range(4))
    ptr, order = _counting_order(cell, nlist)
    return Entries(ptr, q[order], ang[order], flag[order])


@numba.njit(cache=True, nogil=True)
def _home_angle(sims):  # noqa: ANN001, ANN202
    """Per row: the first column of its largest cosine (as ``np.argmax``) and the angle of that cosine."""
    n, k = sims.shape
    home = np.zeros(n, dtype=np.int64)
    angle = np.empty(n)
    for i in range(n):
        b = 0
        v = sims[i, 0]
        for c in range(1, k):
            if sims[i, c] > v:
                v = sims[i, c]
                b = c
        home[i] = b
        angle[i] = np.arccos(min(1.0, max(-1.0, np.float64(v))))
    return home, angle


@numba.njit(cache=True, nogil=True)
def _window_coo(sims, row0, lo_a, hi_a, lo_b, hi_b):  # noqa: ANN001, ANN202
    """(query, cell, angle, flags) of the cosines inside either window, row-major, in one pass over ``sims``
    (a test against the union's bounds first: almost every cosine fails it)."""
    n, nlist = sims.shape
    lo = np.minimum(lo_a, lo_b)
    hi = np.maximum(hi_a, hi_b)
    cap = max(64, WINDOW_ENTRIES_PER_ROW * n)
    q = np.empty(cap, dtype=np.int64)
    cell = np.empty(cap, dtype=np.int64)
    ang = np.empty(cap)
    flag = np.zeros(cap, dtype=np.uint8)
    k = 0
    for i in range(n):
        for c in range(nlist):
            s = sims[i, c]
            if s < lo[c] or s > hi[c]:
                continue
            f = 0
            if s >= lo_a[c] and s <= hi_a[c]:
                f |= 1
            if s >= lo_b[c] and s <= hi_b[c]:
                f |= 2
            if f:
                if k == cap:
                    cap *= 2
                    q, cell, ang, flag = _grown(q, cap), _grown(cell, cap), _grown(ang, cap), _grown(flag, cap)
                q[k] = row0 + i
                cell[k] = c
                ang[k] = np.arccos(min(1.0, max(-1.0, np.float64(s))))
                flag[k] = f
                k += 1
    return q[:k], cell[:k], ang[:k], flag[:k]


@numba.njit(cache=True, nogil=True)
def _grown(a, cap):  # noqa: ANN001, ANN202
    out = np.empty(cap, dtype=a.dtype)
    out[:len(a)] = a
    return out


@numba.njit(cache=True, nogil=True)
def _counting_order(key, nkeys):  # noqa: ANN001, ANN202
    """CSR pointers over ``key`` values and the stable order that groups positions by key."""
    ptr = np.zeros(nkeys + 1, dtype=np.int64)
    for i in range(len(key)):
        ptr[key[i] + 1] += 1
    for c in range(nkeys):
        ptr[c + 1] += ptr[c]
    fill = ptr[:-1].copy()
    order = np.empty(len(key), dtype=np.int64)
    for i in range(len(key)):
        order[fill[key[i]]] = i
        fill[key[i]] += 1
    return ptr, order


@numba.njit(cache=True, nogil=True)
def _rings(cang, cflag, want, k0, k1, mang, m0, m1, width):  # noqa: ANN001, ANN202
    """Each entry's ring ``[first, last)`` among a cell's angle-sorted members (binary searches; empty for entries
    without the ``want`` flag), their union ``[lo, hi)`` and total size."""
    first = np.empty(k1 - k0, dtype=np.int64)
    last = np.empty(k1 - k0, dtype=np.int64)
    lo, hi, total = m1, m0, 0
    for k in range(k0, k1):
        if not (cflag[k] & want):
            first[k - k0], last[k - k0] = m0, m0
            continue
        f = m0 + np.searchsorted(mang[m0:m1], cang[k] - width)
        t = m0 + np.searchsorted(mang[m0:m1], cang[k] + width, side="right")
        first[k - k0], last[k - k0] = f, t
        if t > f:
            lo, hi, total = min(lo, f), max(hi, t), total + t - f
    return first, last, lo, max(hi, lo), total


@numba.njit(cache=True, nogil=True)
def _ring_hits(xq, cptr, cq, cang, cflag, c0, c1, mptr, mrow, mang, emb, width, upper, lower, threshold,
               hit):  # noqa: ANN001, ANN202
    """Set ``hit[q]`` when a stored row lies above the threshold; returns the pair products computed.

    Cell by cell over ``[c0, c1)`` (the members of a cell's rings, sorted by angle, gathered into one contiguous
    buffer), each :data:`IN_STORE` entry scans the members whose angle to the centroid is within ``width`` of
    its own (the triangle inequality of angles; a binary search finds them), until its query's first hit.
    """
    work = 0
    largest = 0
    dim = xq.shape[1]
    for c in range(c0, c1):
        largest = max(largest, mptr[c + 1] - mptr[c])
    buf = np.empty((largest, dim), dtype=np.float32)
    for c in range(c0, c1):
        m0, m1 = mptr[c], mptr[c + 1]
        k0, k1 = cptr[c], cptr[c + 1]
        if m0 == m1 or k0 == k1:
            continue
        first, last, lo, hi, _ = _rings(cang, cflag, 1, k0, k1, mang, m0, m1, width)
        for j in range(lo, hi):  # an element loop: numba's row-slice assignment copied 3.4x slower
            r = mrow[j]
            for i in range(dim):
                buf[j - lo, i] = emb[r, i]
        for k in range(k0, k1):
            q = cq[k]
            if hit[q]:
                continue
            for j in range(first[k - k0], last[k - k0]):
                work += 1
                s = _dot32(xq, q, buf, j - lo)
                if _above(s, xq, q, buf, j - lo, upper, lower, threshold):
                    hit[q] = True
                    break
    return work


@numba.njit(cache=True, nogil=True)
def _ring_pairs(xq, qkey, cptr, cq, cang, cflag, want, c0, c1, mptr, mvec, mkey, mang, width, upper, lower,
                threshold, best, mbest):  # noqa: ANN001, ANN202
    """Every (query, member) pair above the threshold with ``mkey < qkey`` over the ``want`` entries of cells
    ``[c0, c1)`` (scanned as in :func:`_ring_hits`; ``mvec``: the members' vectors in CSR order).

    Returns (query positions, member positions in the CSR, pair products); ``best`` / ``mbest`` take the largest
    cosine of each query / member over its ring pairs.
    """
    out_q = np.empty(64, dtype=np.int64)
    out_m = np.empty(64, dtype=np.int64)
    n_out = 0
    work = 0
    for c in range(c0, c1):
        m0, m1 = mptr[c], mptr[c + 1]
        k0, k1 = cptr[c], cptr[c + 1]
        if m0 == m1 or k0 == k1:
            continue
        first, last, _, _, _ = _rings(cang, cflag, want, k0, k1, mang, m0, m1, width)
        for k in range(k0, k1):
            q = cq[k]
            key = qkey[q]
            for j in range(first[k - k0], last[k - k0]):
                if mkey[j] >= key:
                    continue
                work += 1
                s = _dot32(xq, q, mvec, j)
                if s > best[q]:
                    best[q] = s
                if s > mbest[j]:
                    mbest[j] = s
                if _above(s, xq, q, mvec, j, upper, lower, threshold):
                    if n_out == len(out_q):
                        out_q = np.concatenate((out_q, np.empty(n_out, dtype=np.int64)))
                        out_m = np.concatenate((out_m, np.empty(n_out, dtype=np.int64)))
                    out_q[n_out] = q
                    out_m[n_out] = j
                    n_out += 1
    return out_q[:n_out], out_m[:n_out], work


def ring_hits(xq: np.ndarray, entries: Entries, mptr: np.ndarray, mrow: np.ndarray, mang: np.ndarray,
              emb: np.ndarray, width: float, upper: np.float32, lower: np.float32, threshold: float
              ) -> tuple[np.ndarray, int]:
    """:func:`_ring_hits` over :data:`CELL_GROUPS` cell ranges in parallel: which queries hit, pair products."""
    def one(group: tuple[int, int]) -> tuple[np.ndarray, int]:
        hit = np.zeros(len(xq), dtype=np.bool_)
        work = _ring_hits(xq, entries.ptr, entries.query, entries.angle, entries.flag, group[0], group[1], mptr,
                          mrow, mang, emb, width, upper, lower, threshold, hit)
        return hit, work

    parts = workers.blocks(one, workers.balanced(np.diff(entries.ptr), CELL_GROUPS))
    hit = np.zeros(len(xq), dtype=bool)
    for h, _ in parts:
        hit |= h
    return hit, int(sum(w for _, w in parts))


def ring_pairs(xq: np.ndarray, qkey: np.ndarray, entries: Entries, want: int, mptr: np.ndarray, mvec: np.ndarray,
               mkey: np.ndarray, mang: np.ndarray, width: float, upper: np.float32, lower: np.float32,
               threshold: float, best: np.ndarray, mbest: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_ring_pairs` over :data:`CELL_GROUPS` cell ranges in parallel (pairs in cell order).

    Each range writes its own members' ``mbest`` (disjoint) and its own copy of ``best``, merged by maximum.
    """
    def one(group: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        mine = np.full(len(xq), -2.0, dtype=np.float32)
        out_q, out_m, work = _ring_pairs(xq, qkey, entries.ptr, entries.query, entries.angle, entries.flag, want,
                                         group[0], group[1], mptr, mvec, mkey, mang, width, upper, lower,
                                         threshold, mine, mbest)
        return out_q, out_m, work, mine

    parts = workers.blocks(one, workers.balanced(np.diff(entries.ptr), CELL_GROUPS))
    for *_, mine in parts:
        np.maximum(best, mine, out=best)
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            int(sum(p[2] for p in parts)))


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
    ptr, order = _counting_order(cell, nlist)
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


def one_cell(n: int, present: np.ndarray, skip: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(0, every query)`` for the one cell of an exact-mode index when it holds rows (nothing when ``skip``
    is set: a widening second pass over one cell has nothing left to scan)."""
    if present[0] and skip is None:
        yield 0, np.arange(n, dtype=np.int64)


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
    """``auto`` means exact up to ``exact_max_rows`` candidates, IVF beyond (same result, less work), unless the
    cells turn out to prune too little (:func:`index_cells`)."""
    if params.search != "auto":
        return params.search
    return "exact" if n <= params.exact_max_rows else "ivf"


@dataclass(frozen=True)
class Cells:
    """How a :class:`NeighbourIndex` searches: ``mode`` and its k-means ``centroids`` (None: one cell, every pair
    in BLAS blocks); ``ring_share``: the sampled share of all pairs the cells' rings would scan, when estimated."""

    mode: str
    centroids: np.ndarray | None = None
    ring_share: float | None = None


def index_cells(emb: np.ndarray, candidates: np.ndarray, params: DiversityParams, seed: int) -> Cells:
    """The cells of a :class:`NeighbourIndex` over ``candidates``: none in exact mode (one cell), else the
    centroids of :func:`train_centroids`. They depend on the set of candidates, not on their order (they are
    sorted first), so they can be trained before the strategy has ranked the rows.

    With ``search: auto``, the cells are kept only if a seeded sample says their rings would scan at most
    :data:`AUTO_MAX_RING_SHARE` of all pairs; beyond, the exact mode's BLAS blocks do the same work faster (both
    give the same selection: the choice is speed only)."""
    mode = resolve_mode(params, len(candidates))
    if mode != "ivf":
        return Cells(mode)
    nlist = resolve_nlist(params, len(candidates))
    if nlist <= 1:
        return Cells(mode)
    candidates = np.sort(candidates)
    centroids = train_centroids(emb, candidates, nlist, params, seed)
    if params.search != "auto":
        return Cells(mode, centroids)
    share = ring_share(emb, candidates, centroids, params.threshold, seed)
    return Cells("exact", None, share) if share > AUTO_MAX_RING_SHARE else Cells(mode, centroids, share)


def ring_share(emb: np.ndarray, candidates: np.ndarray, centroids: np.ndarray, threshold: float, seed: int) -> float:
    """The share of all candidate pairs the cells' rings would scan, estimated on a seeded sample of
    :data:`RING_SHARE_ROWS` candidates (every pair of the sample counted against its all-pairs number)."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(candidates, size=min(len(candidates), RING_SHARE_ROWS), replace=False))
    if len(sample) < 2:
        return 0.0
    theta = float(np.arccos(np.clip(threshold, -1.0, 1.0)))
    return _StaticCells(emb, sample, centroids).estimate(theta, seed) / (len(sample) ** 2 / 2)


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
    scan). At most ``train_iters`` Lloyd iterations follow, stopping after the update whose assignment moved at
    most :data:`STABLE_FRACTION` of the sampled rows (the cells only need to be roughly right: any assignment
    keeps the search exact).
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
        sums, counts = _cell_sums(x, home, len(centroids))
        cells = np.flatnonzero(counts)
        sums = sums[cells]
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        ok = norms[:, 0] > 0
        centroids[cells[ok]] = (sums[ok] / norms[ok]).astype(np.float32)
        if moved <= STABLE_FRACTION * len(x):
            break
    return np.ascontiguousarray(centroids)


@numba.njit(cache=True, nogil=True)
def _cell_sums(x, home, nlist):  # noqa: ANN001, ANN202
    """Float64 sum of each cell's rows (added in row order) and the cell sizes."""
    sums = np.zeros((nlist, x.shape[1]))
    counts = np.zeros(nlist, dtype=np.int64)
    for i in range(x.shape[0]):
        c = home[i]
        counts[c] += 1
        for k in range(x.shape[1]):
            sums[c, k] += np.float64(x[i, k])
    return sums, counts


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of every row (row blocks of bounded memory)."""
    return nearest(x, centroids)[0]


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
                    located: tuple[np.ndarray, np.ndarray] | None = None,
                    windows: list[BatchWindows] | None = None) -> SelectionCheck:
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
    any assignment with its true angles keeps the bounds valid), else computed here. ``windows``: with
    ``located``, the cells each row's query reached in the greedy (:meth:`NeighbourIndex.windows_for`): the
    first pass then skips its own (rows x cells) product; the pairs are still found from scratch, over static
    cells, with no early stop.
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
    pairs, best, work = static.scan(theta, threshold, chunk, None, windows if located is not None else None)
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
            for lo in range(0, len(rows), LOCATE_ROWS):
                home[lo:lo + LOCATE_ROWS], angle[lo:lo + LOCATE_ROWS] = nearest(
                    np.ascontiguousarray(emb[rows[lo:lo + LOCATE_ROWS]]), centroids)
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
            out = np.empty((len(self.member_rows), self.emb.shape[1]), dtype=self.emb.dtype)

            def gather(span: tuple[int, int]) -> None:
                out[span[0]:span[1]] = self.emb[self.member_rows[span[0]:span[1]]]

            workers.blocks(gather, workers.spans(len(out), LOCATE_ROWS))
            self._vectors = out
        return self._vectors

    def estimate(self, theta: float, seed: int) -> float:
        """Pair products a scan at ``theta`` would compute, from a seeded sample of :data:`ESTIMATE_ROWS` rows."""
        if self.centroids is None:
            return len(self.rows) ** 2 / 2
        picks = np.random.default_rng(seed).choice(len(self.rows), size=min(ESTIMATE_ROWS, len(self.rows)),
                                                   replace=False)
        sims = centroid_sims(np.ascontiguousarray(self.emb[self.rows[picks]]), self.centroids)
        lo, hi = cosine_window(self.rmin, self.rmax, self.present, theta)
        entries = window_entries(sims, lo, hi, None, None, len(self.centroids))
        per_row = _ring_count(entries.ptr, entries.angle, self.bounds, self.member_angle,
                              theta + ANGLE_MARGIN) / len(picks)
        return float(per_row) * len(self.rows) / 2

    def scan(self, theta: float, threshold: float, chunk: int, skip: float | None,
             windows: list[BatchWindows] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Pairs (selection positions) above ``threshold`` and each row's largest scanned cosine to another row."""
        if self.centroids is not None:
            return self._scan_rings(theta, threshold, chunk, windows)
        best = np.full(len(self.rows), -1.0)
        pairs: list[np.ndarray] = []
        work = 0
        for start in range(0, len(self.rows), chunk):
            q_pos = np.arange(start, min(start + chunk, len(self.rows)))
            x = np.ascontiguousarray(self.emb[self.rows[q_pos]])
            for cell, qs in one_cell(len(q_pos), self.present, skip):
                members = self.order[self.bounds[cell]:self.bounds[cell + 1]]
                # each unordered pair once: a query meets only the members selected before it (the bound is
                # symmetric, so the later row's query reaches the earlier row's cell)
                members = members[:np.searchsorted(members, q_pos[qs[-1]])]
                xq, qp = x[qs], q_pos[qs]

                def block(span: tuple[int, int], xq: np.ndarray = xq, qp: np.ndarray = qp,
                          members: np.ndarray = members) -> tuple[np.ndarray, ...]:
                    m = members[span[0]:span[1]]
                    xs = np.ascontiguousarray(self.emb[self.rows[m]])
                    sims = xq @ xs.T
                    sims[qp[:, None] <= m[None, :]] = -2.0
                    qi, mi = np.nonzero(exceeds(sims, xq, xs, threshold))
                    return m, sims.max(axis=1), sims.max(axis=0), np.stack([qp[qi], m[mi]], axis=1)

                # BLAS blocks of the members on the selection's threads, merged in block order (maxima are exact)
                for m, row_max, col_max, found in workers.blocks(block, list(_blocks(len(qs), len(members)))):
                    work += len(qs) * len(m)
                    np.maximum.at(best, qp, row_max.astype(np.float64))
                    np.maximum.at(best, m, col_max.astype(np.float64))
                    if len(found):
                        pairs.append(found)
        found = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
        return found, best, work


    def _scan_rings(self, theta: float, threshold: float, chunk: int, windows: list[BatchWindows] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, int]:
        """:meth:`scan` with cells: each block of queries meets the earlier members of its windowed cells whose
        angle to the centroid is within ``theta`` of its own (compiled, see :func:`_ring_pairs`). The blocks are
        ``chunk`` selection positions, their windows from a product with the centroids, or the greedy's batches
        with their recorded ``windows``."""
        width = theta + ANGLE_MARGIN
        upper, lower = np.float32(threshold + BORDER_BAND), np.float32(threshold - BORDER_BAND)
        lo, hi = cosine_window(self.rmin, self.rmax, self.present, theta)
        nlist = len(self.centroids)

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, Entries]]:
            if windows is not None:
                for w in windows:
                    x = np.ascontiguousarray(self.emb[self.rows[w.rows]])
                    yield w.rows, x, Entries(w.ptr, w.query, w.angle, np.full(len(w.query), IN_STORE, np.uint8))
                return
            for start in range(0, len(self.rows), chunk):
                q_pos = np.arange(start, min(start + chunk, len(self.rows)))
                x = np.ascontiguousarray(self.emb[self.rows[q_pos]])
                yield q_pos, x, window_entries(centroid_sims(x, self.centroids), lo, hi, None, None, nlist)

        best = np.full(len(self.rows), -1.0)
        member_best = np.full(len(self.rows), -2.0, dtype=np.float32)
        pairs: list[np.ndarray] = []
        work = 0
        for q_pos, x, entries in blocks():
            q_best = np.full(len(q_pos), -2.0, dtype=np.float32)
            out_q, out_m, w = ring_pairs(x, q_pos, entries, IN_STORE, self.bounds, self.member_vectors(), self.order,
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

    def block(span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = span
        xs = np.ascontiguousarray(emb[rows[lo:hi]])
        sims = xq @ xs.T
        own = (probe >= lo) & (probe < hi)
        sims[np.flatnonzero(own), probe[own] - lo] = -2.0
        qi, si = np.nonzero(exceeds(sims, xq, xs, threshold))
        return sims.max(axis=1), np.sort(np.stack([probe[qi], lo + si], axis=1), axis=1)

    parts = workers.blocks(block, _blocks(size, len(rows)))
    best = np.full(size, -1.0, dtype=np.float32)
    for top, _ in parts:
        np.maximum(best, top, out=best)
    found = [pairs for _, pairs in parts if len(pairs)]
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

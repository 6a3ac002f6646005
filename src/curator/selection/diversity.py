"""Whole-selection diversity: no two selected embeddings with cosine similarity above ``1 - min_cosine``.

The selection greedy (``fill.py``) asks, batch by batch, which candidates have a near-duplicate among the
rows selected so far, and which candidates of the batch are near-duplicates of each other. Only selected
rows are indexed and only rows the greedy reaches are queried, so the work grows with the selection, not
with the square of the pool.

**Every answer is exact, in every mode.** The index is an inverted file over spherical k-means cells, but a
query does not scan a fixed number of nearest cells (``nprobe``, which misses pairs on dense embeddings).
Angles between unit vectors are a metric, so for a stored vector ``v`` of cell ``c`` (centroid ``m``) and a
query ``q``, ``angle(q, v) >= |angle(q, m) - angle(v, m)|``. Each cell keeps the smallest and largest angle
of its stored vectors to its centroid; a query scans exactly the cells whose angular annulus can hold a
vector within ``arccos(threshold)`` of it, with a safety margin for float32 rounding. Pairs within
``BORDER_BAND`` of the threshold are re-decided in float64, so a pair's verdict never depends on how the
products were blocked. Hence the greedy's outcome is the one-row-at-a-time exact greedy for any
``chunk_size``, ``nlist`` and ``nprobe``; the cells only decide how much work is skipped. ``exact`` mode is
one cell (every pair), scanned in blocks of bounded memory.

After the greedy, :func:`check_selection` verifies the final selection independently of the greedy's
batching (an exact all-pairs range search over the selected rows with the same pruning) and measures the
largest selected-pair cosine exactly; ``fill.py`` drops the later pick of any violating pair (none is
expected: the greedy is exact) and the metrics report what was checked, found and repaired.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
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
NLIST_PER_SQRT_ROWS = 3.0
"""Cells per sqrt(candidates) when ``nlist`` is 0 (see :func:`resolve_nlist`)."""
MAX_TRAIN_POINTS = 1 << 15
"""k-means training sample cap: training costs sample x cells x dim per iteration, and the cells only need
to be roughly right (any assignment keeps the search exact; tighter cells only prune more)."""
ESTIMATE_ROWS = 2048
"""Rows whose cell tests estimate the cost of a full check (a seeded sample)."""
CHECK_WORK_FACTOR = 1.0
"""A full check runs when it is estimated at most this many times the greedy's own pair products; beyond,
the selection is audited on a sample (see :func:`check_selection`)."""
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
        self.cells = CellStore(self.nlist, emb.shape[1])
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

    def _any_above(self, xq: np.ndarray, stored: np.ndarray) -> np.ndarray:
        found = np.zeros(len(xq), dtype=bool)
        for lo, hi in _blocks(len(xq), len(stored)):
            block = stored[lo:hi]
            found |= exceeds(xq @ block.T, xq, block, self.threshold).any(axis=1)
            self.products += len(xq) * (hi - lo)
        return found

    def add(self, rows: np.ndarray, positions: np.ndarray) -> None:
        """Store newly selected ``rows``; ``positions`` are their indices in the last :meth:`query` batch."""
        if len(rows):
            self.cells.append(self._home[positions], self.emb[rows], rows, self._angle[positions])

    def remove(self, rows: np.ndarray) -> None:
        """Forget stored ``rows`` (a repair dropped them from the selection)."""
        self.cells.remove(rows)


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
    """``nlist``, or ``NLIST_PER_SQRT_ROWS * sqrt(n)`` cells when 0; never more than the sample can support.

    Unlike a fixed-nprobe IVF, whose work per query grows with the probed cells, exact pruning needs cells
    tight enough that a query's annulus test rejects most of them: finer cells than sqrt(n) pay for their
    extra centroid products (at 200k rows of the benchmark table, 3 sqrt(n) cells did 30x fewer pair products
    than sqrt(n) and ran 5x faster end to end).
    """
    nlist = params.nlist or int(round(NLIST_PER_SQRT_ROWS * np.sqrt(n)))
    return int(max(1, min(nlist, n // params.train_points_per_list)))


def train_centroids(emb: np.ndarray, candidates: np.ndarray, nlist: int, params: DiversityParams,
                    seed: int) -> np.ndarray:
    """Unit centroids of spherical k-means on a seeded sample of ``nlist * train_points_per_list`` candidates."""
    size = min(len(candidates), nlist * params.train_points_per_list, max(nlist, MAX_TRAIN_POINTS))
    sample = np.sort(np.random.default_rng(seed).choice(candidates, size=size, replace=False))
    km = faiss.Kmeans(emb.shape[1], nlist, niter=params.train_iters, seed=seed, spherical=True,
                      max_points_per_centroid=params.train_points_per_list, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(emb[sample]))
    c = km.centroids.astype(np.float32)
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    return np.ascontiguousarray(c / np.maximum(norms, np.finfo(np.float32).tiny))


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
                    sample: int, seed: int, chunk: int, max_products: float = math.inf) -> SelectionCheck:
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
    ``nn_cosine_mean`` is always the exact mean nearest-neighbour cosine of that seeded sample.
    """
    start = time.perf_counter()
    cells = f"{len(centroids)} cells pruned by angular annuli" if centroids is not None else "brute force"
    if len(rows) < 2:
        return SelectionCheck("nothing to check", np.zeros((0, 2), np.int64), math.nan, True, threshold,
                              math.nan, 0, 0, time.perf_counter() - start)
    static = _StaticCells(emb, rows, centroids)
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

    def __init__(self, emb: np.ndarray, rows: np.ndarray, centroids: np.ndarray | None) -> None:
        self.emb, self.rows, self.centroids = emb, rows, centroids
        nlist = 1 if centroids is None else len(centroids)
        home = np.zeros(len(rows), dtype=np.int64)
        angle = np.zeros(len(rows))
        if centroids is not None:
            for lo in range(0, len(rows), max(1, MAX_PRODUCT_ELEMENTS // nlist)):
                sims = emb[rows[lo:lo + MAX_PRODUCT_ELEMENTS // nlist]] @ centroids.T
                h = np.argmax(sims, axis=1)
                home[lo:lo + len(h)] = h
                angle[lo:lo + len(h)] = np.arccos(np.clip(sims[np.arange(len(h)), h].astype(np.float64), -1, 1))
        self.order, self.bounds = _members_by_cell(home, nlist)
        self.rmin, self.rmax = _radii(home, angle, nlist)
        self.present = np.diff(self.bounds) > 0
        self.sizes = np.diff(self.bounds)

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
        per_row = (((sims >= lo) & (sims <= hi)) * self.sizes[None, :]).sum(axis=1).mean()
        return float(per_row) * len(self.rows) / 2

    def scan(self, theta: float, threshold: float, chunk: int, skip: float | None
             ) -> tuple[np.ndarray, np.ndarray, int]:
        """Pairs (selection positions) above ``threshold`` and each row's largest scanned cosine to another row."""
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

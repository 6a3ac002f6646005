"""Whole-selection diversity: no two selected embeddings with cosine similarity above ``1 - min_cosine``.

The selection greedy (``fill.py``) asks, batch by batch, which candidates have a near-duplicate among the
rows selected so far, and which candidates of the batch are near-duplicates of each other. Only selected
rows are indexed and only rows the greedy reaches are queried, so the work grows with the selection, not
with the square of the pool.

The index is an inverted file over spherical k-means cells (faiss k-means): a query compares itself with
the rows of the ``nprobe`` cells whose centroids are nearest to it. With one cell (``exact``) that is every
pair. The scan is list-major: per batch, each cell's stored vectors are multiplied once with all the
queries that probe it (one BLAS product), instead of each query walking its cells alone, which keeps the
scan compute-bound rather than memory-bound; with many cells these products are small, so BLAS runs
single-threaded there (thread start-up would cost more than the product). Inner products are exact, so the only approximation is a pair
whose members fall in cells the query does not probe; :func:`pair_recall` measures it against exact search.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from curator.selection.params import DiversityParams

GROWTH = 1.5
"""Capacity factor of a cell's vector buffer when it fills up (amortised O(1) appends, <= 50% slack)."""
MIN_CAPACITY = 16


@dataclass
class ChunkNeighbours:
    """For a batch of distinct rows: whether each has a selected near-duplicate, and its in-batch ones (CSR)."""

    hit: np.ndarray
    lims: np.ndarray
    nbrs: np.ndarray


class NeighbourIndex:
    """Near-duplicate queries against a growing set of selected rows (see the module docstring)."""

    def __init__(self, emb: np.ndarray, candidates: np.ndarray, params: DiversityParams, seed: int) -> None:
        self.emb = emb
        self.threshold = np.float32(params.threshold)
        self.mode = resolve_mode(params, len(candidates))
        if self.mode == "exact":
            self.nlist, self.nprobe = 1, 1
            self.quantizer: faiss.IndexFlatIP | None = None
        else:
            self.nlist = resolve_nlist(params, len(candidates))
            self.nprobe = min(params.nprobe, self.nlist)
            self.quantizer = train_quantizer(emb, candidates, self.nlist, params, seed)
        self.cells = CellStore(self.nlist, emb.shape[1])
        self._blas_threads = 1 if self.nlist > 1 else None  # one big product per batch in exact mode: all threads
        self.queried = 0
        self._probes = np.zeros((0, self.nprobe), dtype=np.int64)

    def probes(self, x: np.ndarray) -> np.ndarray:
        """The ``nprobe`` nearest cells of each row of ``x`` (column 0: the cell it is stored in)."""
        if self.quantizer is None:
            return np.zeros((len(x), 1), dtype=np.int64)
        return self.quantizer.search(x, self.nprobe)[1]

    def query(self, rows: np.ndarray) -> ChunkNeighbours:
        """Near-duplicates of ``rows`` (distinct) among the selected rows and among ``rows`` themselves."""
        x = np.ascontiguousarray(self.emb[rows])
        self.queried += len(rows)
        probes = self.probes(x)
        self._probes = probes
        hit = np.zeros(len(rows), dtype=bool)
        pair_q, pair_b = [], []
        home = probes[:, 0]
        home_order = np.argsort(home, kind="stable")
        home_bounds = np.searchsorted(home[home_order], np.arange(self.nlist + 1))
        q_of = np.repeat(np.arange(len(rows)), probes.shape[1])
        cell_of = probes.ravel()
        order = np.argsort(cell_of, kind="stable")
        cells, starts = np.unique(cell_of[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        with threadpool_limits(limits=self._blas_threads, user_api="blas"):
            for cell, lo, hi in zip(cells.tolist(), starts.tolist(), ends.tolist(), strict=True):
                qs = q_of[order[lo:hi]]
                xq = x[qs]
                stored = self.cells.vectors(cell)
                if len(stored):
                    hit[qs] |= (xq @ stored.T > self.threshold).any(axis=1)
                members = home_order[home_bounds[cell]:home_bounds[cell + 1]]
                if len(members):
                    qi, bi = np.nonzero(xq @ x[members].T > self.threshold)
                    pair_q.append(qs[qi])
                    pair_b.append(members[bi])
        return ChunkNeighbours(hit=hit, **_csr(pair_q, pair_b, len(rows)))

    def add(self, rows: np.ndarray, positions: np.ndarray) -> None:
        """Store newly selected ``rows``; ``positions`` are their indices in the last :meth:`query` batch."""
        if len(rows):
            self.cells.append(self._probes[positions, 0], self.emb[rows], rows)

    def nearest(self, rows: np.ndarray) -> np.ndarray:
        """Cosine of each stored row in ``rows`` to its most similar other stored row, within probed cells.

        -1 where no other stored row shares a probed cell (exact over all stored rows in exact mode).
        """
        x = np.ascontiguousarray(self.emb[rows])
        probes = self.probes(x)
        best = np.full(len(rows), -1.0, dtype=np.float32)
        with threadpool_limits(limits=self._blas_threads, user_api="blas"):
            for c in range(probes.shape[1]):
                for cell in np.unique(probes[:, c]).tolist():
                    qs = np.flatnonzero(probes[:, c] == cell)
                    sim = x[qs] @ self.cells.vectors(cell).T
                    sim[self.cells.ids(cell)[None, :] == rows[qs][:, None]] = -1.0
                    if sim.shape[1]:
                        best[qs] = np.maximum(best[qs], sim.max(axis=1))
        return best


class CellStore:
    """Per-cell growable float32 buffers of the selected vectors (contiguous, for one BLAS product per cell)."""

    def __init__(self, nlist: int, dim: int) -> None:
        self.dim = dim
        self.buffers: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)] * nlist
        self.row_ids: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * nlist
        self.sizes = np.zeros(nlist, dtype=np.int64)

    def vectors(self, cell: int) -> np.ndarray:
        return self.buffers[cell][: self.sizes[cell]]

    def ids(self, cell: int) -> np.ndarray:
        return self.row_ids[cell][: self.sizes[cell]]

    def append(self, cells: np.ndarray, x: np.ndarray, rows: np.ndarray) -> None:
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
            self.buffers[cell][size:size + len(take)] = x[take]
            self.row_ids[cell][size:size + len(take)] = rows[take]
            self.sizes[cell] = size + len(take)


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
    """``auto`` means exact up to ``exact_max_rows`` candidates, IVF beyond."""
    if params.search != "auto":
        return params.search
    return "exact" if n <= params.exact_max_rows else "ivf"


def resolve_nlist(params: DiversityParams, n: int) -> int:
    """``nlist``, or about sqrt(n) cells when 0; never more cells than the training sample can support."""
    nlist = params.nlist or int(round(np.sqrt(n)))
    return int(max(1, min(nlist, n // params.train_points_per_list)))


def train_quantizer(emb: np.ndarray, candidates: np.ndarray, nlist: int, params: DiversityParams,
                    seed: int) -> faiss.IndexFlatIP:
    """Spherical k-means cells on a seeded sample of ``nlist * train_points_per_list`` candidates."""
    size = min(len(candidates), nlist * params.train_points_per_list)
    sample = np.sort(np.random.default_rng(seed).choice(candidates, size=size, replace=False))
    km = faiss.Kmeans(emb.shape[1], nlist, niter=params.train_iters, seed=seed, spherical=True,
                      max_points_per_centroid=params.train_points_per_list, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(emb[sample]))
    quantizer = faiss.IndexFlatIP(emb.shape[1])
    quantizer.add(km.centroids)
    return quantizer


def exact_pairs(x: np.ndarray, threshold: float) -> np.ndarray:
    """All ordered pairs ``(i, j)``, ``i != j``, of rows of ``x`` with cosine > ``threshold`` (faiss, exact)."""
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, _, labels = index.range_search(np.ascontiguousarray(x), float(threshold))
    owner = np.repeat(np.arange(len(x)), np.diff(lims.astype(np.int64)))
    keep = owner != labels
    return np.stack([owner[keep], labels[keep]], axis=1)


def pair_recall(emb: np.ndarray, candidates: np.ndarray, sample: np.ndarray, params: DiversityParams,
                seed: int) -> dict[str, float]:
    """Recall of near-duplicate pairs within ``sample`` rows by the index the selection would build.

    The cells are trained on ``candidates`` (the whole pool, as in a selection run), so cell sizes and
    boundaries are those of the real run; a pair ``(i, j)`` counts as found when the query ``i`` reaches the
    stored ``j``, which is what blocking needs. Exact pairs come from faiss flat range search.
    """
    x = np.ascontiguousarray(emb[sample])
    truth = exact_pairs(x, params.threshold)
    index = NeighbourIndex(emb, candidates, params, seed)
    found_hit = np.zeros(len(truth), dtype=bool)
    if len(truth):
        probes = index.probes(x)
        found_hit = (probes[truth[:, 0]] == probes[truth[:, 1], :1]).any(axis=1)
    return {"sample_rows": int(len(sample)), "exact_pairs": int(len(truth)), "found_pairs": int(found_hit.sum()),
            "recall": float(found_hit.mean()) if len(truth) else 1.0, "mode": index.mode,
            "nlist": index.nlist, "nprobe": index.nprobe}


def nearest_selected_stats(index: NeighbourIndex | None, emb: np.ndarray, rows: np.ndarray, sample: int,
                           seed: int) -> dict[str, float]:
    """Nearest-selected-neighbour cosine of up to ``sample`` selected rows.

    Uses the selection's own index (so the statistic sees what the greedy saw); without one (diversity off)
    an exact flat search over the selected rows.
    """
    if len(rows) < 2 or sample == 0:
        return {"nn_cosine_max": float("nan"), "nn_cosine_mean": float("nan"), "nn_sample": 0}
    probe = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(sample, len(rows)), replace=False))
    if index is not None:
        nn = index.nearest(rows[probe])
    else:
        flat = faiss.IndexFlatIP(emb.shape[1])
        flat.add(np.ascontiguousarray(emb[rows]))
        sim, ids = flat.search(np.ascontiguousarray(emb[rows[probe]]), 2)
        nn = np.where(ids[:, 0] == probe, sim[:, 1], sim[:, 0])
    return {"nn_cosine_max": float(nn.max()), "nn_cosine_mean": float(nn.mean()), "nn_sample": int(len(probe))}

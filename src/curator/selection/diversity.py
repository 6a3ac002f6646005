"""Whole-selection diversity: no two selected embeddings with cosine similarity above ``1 - min_cosine``.

The selection greedy (``fill.py``) asks, chunk by chunk, which candidates have a near-duplicate among the
utterances selected so far, and which candidates of the chunk are near-duplicates of each other. Only the
selected rows are indexed and only the rows the greedy reaches are queried, so the work grows with the
selection, not with the square of the pool.

Two backends answer the same questions: ``exact`` (faiss flat inner product, every pair) and ``ivf``
(faiss IVF-Flat: each query scans the ``nprobe`` cells nearest to it out of ``nlist`` k-means cells; exact
inner products, so its only error is a missed pair). :func:`pair_recall` measures the IVF recall of
near-duplicate pairs against exact search; the benchmark reports it on a 50k sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from curator.selection.params import DiversityParams


@dataclass
class ChunkNeighbours:
    """For a chunk of distinct rows: whether each has a selected near-duplicate, and its in-chunk ones (CSR)."""

    hit: np.ndarray
    lims: np.ndarray
    nbrs: np.ndarray


class NeighbourIndex:
    """Near-duplicate queries against a growing set of selected rows (see the module docstring)."""

    def __init__(self, emb: np.ndarray, candidates: np.ndarray, params: DiversityParams, seed: int) -> None:
        self.emb = emb
        self.threshold = float(params.threshold)
        self.mode = resolve_mode(params, len(candidates))
        d = emb.shape[1]
        if self.mode == "exact":
            self.nlist = 0
            self.nprobe = 0
            self.quantizer = None
            self.index: faiss.Index = faiss.IndexFlatIP(d)
        else:
            self.nlist = resolve_nlist(params, len(candidates))
            self.nprobe = min(params.nprobe, self.nlist)
            self.quantizer = train_quantizer(emb, candidates, self.nlist, params, seed)
            self.index = self._ivf()
        self.rows = np.zeros(0, dtype=np.int64)
        self.queried = 0

    def _ivf(self) -> faiss.IndexIVFFlat:
        index = faiss.IndexIVFFlat(self.quantizer, self.emb.shape[1], self.nlist, faiss.METRIC_INNER_PRODUCT)
        index.nprobe = self.nprobe
        return index

    def query(self, rows: np.ndarray) -> ChunkNeighbours:
        """Near-duplicates of ``rows`` (distinct) among the selected rows and among ``rows`` themselves."""
        x = np.ascontiguousarray(self.emb[rows])
        self.queried += len(rows)
        if self.mode == "exact":
            hit = self._hit(self.index.range_search(x, self.threshold)) if self.index.ntotal else np.zeros(len(rows), bool)
            local = faiss.IndexFlatIP(x.shape[1])
            local.add(x)
            lims, _, labels = local.range_search(x, self.threshold)
        else:
            dist, assign = self.quantizer.search(x, self.nprobe)
            hit = (self._hit(self.index.range_search_preassigned(x, self.threshold, assign, dist))
                   if self.index.ntotal else np.zeros(len(rows), bool))
            local = self._ivf()
            _add_preassigned(local, x, np.arange(len(rows), dtype=np.int64), assign[:, 0])
            lims, _, labels = local.range_search_preassigned(x, self.threshold, assign, dist)
        return ChunkNeighbours(hit=hit, **_drop_self(lims, labels))

    def add(self, rows: np.ndarray) -> None:
        """Index newly selected rows."""
        if len(rows) == 0:
            return
        x = np.ascontiguousarray(self.emb[rows])
        if self.mode == "exact":
            self.index.add(x)
        else:
            _, assign = self.quantizer.search(x, 1)
            ids = np.arange(len(self.rows), len(self.rows) + len(rows), dtype=np.int64)
            _add_preassigned(self.index, x, ids, assign[:, 0])
        self.rows = np.concatenate([self.rows, rows])

    @staticmethod
    def _hit(result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        return np.diff(result[0].astype(np.int64)) > 0


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


def _add_preassigned(index: faiss.IndexIVFFlat, x: np.ndarray, ids: np.ndarray, assign: np.ndarray) -> None:
    """Add vectors to IVF lists already chosen by the caller (saves a second quantizer pass)."""
    assign = np.ascontiguousarray(assign, dtype=np.int64)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    index.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(assign))


def _drop_self(lims: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Remove each query's match with itself from a range-search result over the queries themselves."""
    lims = lims.astype(np.int64)
    owner = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
    keep = labels != owner
    counts = np.bincount(owner[keep], minlength=len(lims) - 1)
    return {"lims": np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
            "nbrs": labels[keep].astype(np.int64)}


def near_duplicate_pairs(x: np.ndarray, threshold: float, nprobe: int = 0, nlist: int = 0,
                         seed: int = 0, train_points_per_list: int = 40, train_iters: int = 10) -> set[tuple[int, int]]:
    """All pairs ``(i < j)`` of rows of ``x`` with cosine > ``threshold``: exact when ``nprobe`` is 0, else IVF."""
    if nprobe == 0:
        index: faiss.Index = faiss.IndexFlatIP(x.shape[1])
        index.add(x)
    else:
        params = DiversityParams(min_cosine=1.0 - threshold, search="ivf", nlist=nlist, nprobe=nprobe,
                                 train_points_per_list=train_points_per_list, train_iters=train_iters)
        rows = np.arange(len(x))
        quantizer = train_quantizer(x, rows, resolve_nlist(params, len(x)), params, seed)
        index = faiss.IndexIVFFlat(quantizer, x.shape[1], quantizer.ntotal, faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(nprobe, quantizer.ntotal)
        index.add(x)
        index.quantizer_keepalive = quantizer
    lims, _, labels = index.range_search(np.ascontiguousarray(x), threshold)
    owner = np.repeat(np.arange(len(x)), np.diff(lims.astype(np.int64)))
    lo, hi = np.minimum(owner, labels), np.maximum(owner, labels)
    keep = lo != hi
    return set(zip(lo[keep].tolist(), hi[keep].tolist(), strict=True))


def pair_recall(x: np.ndarray, threshold: float, nprobe: int, nlist: int = 0, seed: int = 0) -> dict[str, float]:
    """Share of the exact near-duplicate pairs of ``x`` that IVF search (either direction) finds."""
    exact = near_duplicate_pairs(x, threshold)
    approx = near_duplicate_pairs(x, threshold, nprobe=nprobe, nlist=nlist, seed=seed)
    found = len(exact & approx)
    return {"exact_pairs": len(exact), "found_pairs": found,
            "recall": found / len(exact) if exact else 1.0}


def max_pair_cosine(emb: np.ndarray, rows: np.ndarray, sample: int, seed: int) -> dict[str, float]:
    """Nearest-selected-neighbour cosine of up to ``sample`` selected rows (exact, against all selected)."""
    if len(rows) < 2 or sample == 0:
        return {"nn_cosine_max": float("nan"), "nn_cosine_mean": float("nan"), "nn_sample": 0}
    probe = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(sample, len(rows)), replace=False))
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(np.ascontiguousarray(emb[rows]))
    sim, ids = index.search(np.ascontiguousarray(emb[rows[probe]]), 2)
    nn = np.where(ids[:, 0] == probe, sim[:, 1], sim[:, 0])
    return {"nn_cosine_max": float(nn.max()), "nn_cosine_mean": float(nn.mean()), "nn_sample": int(len(probe))}

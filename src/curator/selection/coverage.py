"""Cluster-balanced coverage order in embedding space (an approximation of farthest-point / facility location).

Exact farthest-point traversal costs O(n * picks * D), out of reach at a million rows. Instead, each slice's
candidates are clustered with spherical k-means (faiss); the order then takes the most central member of
every cluster (round 0), then the next most central of every cluster (round 1), and so on, bigger clusters
first within a round. Every region of embedding space is thus represented before any region repeats, as in
cluster-balanced data pruning; the whole-selection near-duplicate rule (``diversity.py``) stops a round
from picking near-copies of an earlier pick. Cost: O(n * clusters * D) per k-means iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from curator.selection.params import CoverageParams


@dataclass
class CoverageOrder:
    """Per row: its round (0 = most central of its cluster), and its cluster's visiting rank in a round."""

    round: np.ndarray
    visit: np.ndarray
    cluster: np.ndarray

    def utility(self) -> np.ndarray:
        """Diminishing returns: the first pick of a cluster is worth 1, the r-th 1 / (r + 1) (rows outside: 1)."""
        return 1.0 / (1.0 + np.maximum(self.round, 0).astype(np.float64))


def coverage_order(emb: np.ndarray, group: np.ndarray, mask: np.ndarray, params: CoverageParams,
                   seed: int) -> CoverageOrder:
    """Cluster-balanced order of the ``mask`` rows, computed separately within each ``group`` (slice)."""
    n = len(group)
    rnd = np.full(n, -1, dtype=np.int64)
    visit = np.full(n, -1, dtype=np.int64)
    cluster = np.full(n, -1, dtype=np.int64)
    for g in np.unique(group[mask]):
        rows = np.flatnonzero(mask & (group == g))
        labels, sim = _cluster(emb[rows], params, seed + int(g))
        rnd[rows], visit[rows] = _rounds(labels, sim, rows)
        cluster[rows] = labels
    return CoverageOrder(round=rnd, visit=visit, cluster=cluster)


def n_clusters(n: int, params: CoverageParams) -> int:
    """``clusters``, but no more than one per ``min_cluster_size`` rows (at least one)."""
    return int(max(1, min(params.clusters, n // params.min_cluster_size)))


def _cluster(x: np.ndarray, params: CoverageParams, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means labels and each row's cosine to its centroid."""
    k = n_clusters(len(x), params)
    if k == 1:
        centroid = x.sum(axis=0)
        norm = np.linalg.norm(centroid)
        sim = x @ (centroid / norm) if norm > 0 else np.zeros(len(x), dtype=np.float32)
        return np.zeros(len(x), dtype=np.int64), sim
    km = faiss.Kmeans(x.shape[1], k, niter=params.kmeans_iters, seed=seed, spherical=True,
                      max_points_per_centroid=params.train_points_per_cluster, min_points_per_centroid=1)
    km.train(x)
    sim, labels = km.index.search(x, 1)
    return labels[:, 0].astype(np.int64), sim[:, 0]


def _rounds(labels: np.ndarray, sim: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each row within its cluster (most central first) and its cluster's rank by size (biggest first)."""
    order = np.lexsort((rows, -sim, labels))
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts
    sizes = np.bincount(labels)
    by_size = np.lexsort((np.arange(len(sizes)), -sizes))
    cluster_rank = np.empty_like(by_size)
    cluster_rank[by_size] = np.arange(len(sizes))
    return rank, cluster_rank[labels]

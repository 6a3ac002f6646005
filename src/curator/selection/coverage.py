"""Coverage order in embedding space: farthest-point traversal at the level of k-means clusters.

Exact farthest-point traversal over rows costs O(n * picks * D), out of reach at a million rows. Instead,
per slice:

1. k-center seeds: farthest-point traversal over a seeded sample (``clusters * train_points_per_cluster``
   rows), so every isolated region of the sample gets a seed, however few rows it has;
2. spherical k-means (faiss) refines those seeds into clusters, and every row joins its nearest centroid;
3. the clusters are visited in farthest-point order of their centroids, starting from the largest;
4. round ``r`` takes the ``r``-th most central member of every cluster, in that visiting order.

The first round is thus a coarse farthest-point cover of the slice (rare regions come early), and later
rounds keep every region represented in proportion, as cluster-balanced data pruning does; the
whole-selection near-duplicate rule (``diversity.py``) keeps a round from re-picking near-copies. Cost:
O(n * clusters * D) per k-means iteration, plus O(sample * clusters * D) for the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from curator.selection import workers
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
    """Coverage order of the ``mask`` rows, computed separately within each ``group`` (slice)."""
    n = len(group)
    rnd = np.full(n, -1, dtype=np.int64)
    visit = np.full(n, -1, dtype=np.int64)
    cluster = np.full(n, -1, dtype=np.int64)
    members = np.flatnonzero(mask)
    members = members[np.argsort(group[members], kind="stable")]
    values, starts = np.unique(group[members], return_index=True)
    bounds = [*starts.tolist(), len(members)]

    def one(k: int) -> None:
        # the slices run on the selection's threads (``workers.py``), each k-means on one OpenMP thread: faiss's
        # sums then have one order, so the clusters do not depend on the thread count
        faiss.omp_set_num_threads(1)
        rows = members[bounds[k]:bounds[k + 1]]
        labels, sim, centroids = _cluster(np.ascontiguousarray(emb[rows]), params, seed + int(values[k]))
        rnd[rows] = _rank_in_cluster(labels, sim)
        visit[rows] = _visit_rank(centroids, np.bincount(labels, minlength=len(centroids)))[labels]
        cluster[rows] = labels

    # largest slices first, so the threads finish together (each slice writes its own rows)
    workers.blocks(one, np.argsort(-np.diff(bounds), kind="stable").tolist())
    return CoverageOrder(round=rnd, visit=visit, cluster=cluster)


def n_clusters(n: int, params: CoverageParams) -> int:
    """``clusters``, but no more than one per ``min_cluster_size`` rows (at least one)."""
    return int(max(1, min(params.clusters, n // params.min_cluster_size)))


def farthest_points(x: np.ndarray, k: int, first: int) -> np.ndarray:
    """Indices of ``k`` rows of unit vectors ``x`` by farthest-point traversal (lowest max-cosine next)."""
    picked = np.empty(min(k, len(x)), dtype=np.int64)
    picked[0] = first
    closest = x @ x[first]
    for i in range(1, len(picked)):
        picked[i] = int(np.argmin(closest))
        np.maximum(closest, x @ x[picked[i]], out=closest)
    return picked


def _cluster(x: np.ndarray, params: CoverageParams, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, each row's cosine to its centroid, and the centroids (k-center seeds refined by k-means)."""
    k = n_clusters(len(x), params)
    size = min(len(x), k * params.train_points_per_cluster)
    sample = np.sort(np.random.default_rng(seed).choice(len(x), size=size, replace=False))
    xs = x[sample]
    mean = xs.mean(axis=0)
    seeds = xs[farthest_points(xs, k, first=int(np.argmax(xs @ mean)))]
    if k == 1:
        centroids = mean[None, :] / max(float(np.linalg.norm(mean)), np.finfo(np.float32).tiny)
    else:
        km = faiss.Kmeans(x.shape[1], k, niter=params.kmeans_iters, seed=seed, spherical=True,
                          max_points_per_centroid=params.train_points_per_cluster, min_points_per_centroid=1)
        km.train(xs, init_centroids=np.ascontiguousarray(seeds))
        centroids = km.centroids
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    sim, labels = index.search(x, 1)
    return labels[:, 0].astype(np.int64), sim[:, 0], centroids


def _rank_in_cluster(labels: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """Rank of each row within its cluster, most central first (ties by row)."""
    order = np.lexsort((np.arange(len(labels)), -sim, labels))
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts
    return rank


def _visit_rank(centroids: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Visiting rank of each cluster: farthest-point order of the non-empty centroids, largest first."""
    live = np.flatnonzero(sizes > 0)
    c = centroids[live] / np.maximum(np.linalg.norm(centroids[live], axis=1, keepdims=True),
                                     np.finfo(np.float32).tiny)
    order = live[farthest_points(c, len(live), first=int(np.argmax(sizes[live])))]
    rank = np.full(len(centroids), len(centroids), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank

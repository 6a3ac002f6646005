"""Near-duplicate search: the IVF index against exact search, and the selection's guarantee in IVF mode."""

from __future__ import annotations

import numpy as np
import pytest

from curator.selection.diversity import CellStore, NeighbourIndex, exact_pairs, pair_recall
from curator.selection.params import DiversityParams
from curator.selection.pool import load_pool
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

from .conftest import make_params, run_selection, table_hours


@pytest.fixture(scope="module")
def pool():  # noqa: ANN201
    table = synthetic_scores(SyntheticSpec(n=6000, dim=32, seed=4, rows_per_source=100, duplicate_fraction=0.05))[0]
    return load_pool(table, ["distortion"])


def test_ivf_recall_of_near_duplicate_pairs(pool) -> None:  # noqa: ANN001
    params = DiversityParams(min_cosine=0.15, search="ivf", nprobe=4)
    sample = np.sort(np.random.default_rng(0).choice(pool.n, 3000, replace=False))
    result = pair_recall(pool.emb, np.arange(pool.n), sample, params, seed=0)
    assert result["mode"] == "ivf" and result["nlist"] > 1
    assert result["exact_pairs"] > 20
    assert result["recall"] >= 0.99


def test_query_finds_exactly_the_brute_force_pairs_in_exact_mode(pool) -> None:  # noqa: ANN001
    params = DiversityParams(min_cosine=0.15, search="exact")
    index = NeighbourIndex(pool.emb, np.arange(pool.n), params, seed=0)
    stored = np.arange(0, 1000)
    index.query(stored)
    index.add(stored, np.arange(len(stored)))
    batch = np.arange(1000, 1500)
    nb = index.query(batch)
    x = pool.emb.astype(np.float64)
    sim_stored = x[batch] @ x[stored].T
    assert np.array_equal(nb.hit, (sim_stored > params.threshold).any(axis=1))
    pairs = exact_pairs(pool.emb[batch], params.threshold)
    got = {(q, int(b)) for q in range(len(batch)) for b in nb.nbrs[nb.lims[q]:nb.lims[q + 1]]}
    assert got == set(map(tuple, pairs.tolist()))
    near = index.nearest(stored[:50])
    sims = x[stored[:50]] @ x[stored].T
    sims[np.arange(50), np.arange(50)] = -1
    assert np.allclose(near, sims.max(axis=1), atol=1e-5)


def test_ivf_selection_keeps_the_guarantee_up_to_recall() -> None:
    table = synthetic_scores(SyntheticSpec(n=3000, dim=16, seed=8, rows_per_source=50, duplicate_fraction=0.2))[0]
    K = 0.5 * table_hours(table)
    ivf = run_selection(table, make_params(K_hours=K, **{"diversity.search": "ivf", "diversity.nprobe": 8,
                                                         "diversity.chunk_size": 512}))
    x = ivf.pool.emb[ivf.selected].astype(np.float64)
    sim = x @ x.T
    np.fill_diagonal(sim, -1)
    violating = int((sim > ivf.params.diversity.threshold).sum() // 2)
    exact_dups = len(exact_pairs(ivf.pool.emb, ivf.params.diversity.threshold)) // 2
    assert ivf.fill.search["mode"] == "ivf"
    assert violating <= 0.01 * exact_dups


def test_cell_store_grows_and_keeps_order() -> None:
    store = CellStore(nlist=3, dim=2)
    for k in range(40):
        store.append(np.array([k % 3]), np.array([[k, -k]], dtype=np.float32), np.array([k]))
    assert store.ids(1).tolist() == list(range(1, 40, 3))
    assert store.vectors(1)[:, 0].tolist() == list(range(1, 40, 3))

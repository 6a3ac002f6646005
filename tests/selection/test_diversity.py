"""Whole-selection diversity: exact in every mode, for any geometry, chunk size and cell count.

Every check here is an exact brute-force float64 product written in the test, never the code under test.
Geometries: ``dense`` (rows near a low-dimensional subspace, median nearest-neighbour cosine ~0.94, where a
fixed-nprobe IVF missed pairs), ``clustered`` (tight clusters), ``near_duplicate`` (many planted copies).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curator.selection.diversity import (
    AUTO_MAX_RING_SHARE,
    CellStore,
    NeighbourIndex,
    check_selection,
    exact_pairs,
    exceeds,
    pair_recall,
    train_centroids,
)
from curator.selection.params import DiversityParams
from curator.selection.pool import load_pool
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

from .conftest import make_params, run_selection, table_hours

GEOMETRIES = ("dense", "clustered", "near_duplicate")
MODES = ({"diversity.search": "exact"},
         {"diversity.search": "ivf", "diversity.nlist": 8, "diversity.train_points_per_list": 8},
         {"diversity.search": "ivf", "diversity.nlist": 16,
          "diversity.train_points_per_list": 8})


def geometry_embeddings(kind: str, n: int, dim: int, seed: int) -> np.ndarray:
    """Embeddings of one of the GEOMETRIES (float32, not normalised: the pool centres and normalises)."""
    rng = np.random.default_rng(seed)
    if kind == "dense":
        basis = rng.standard_normal((3, dim))
        return (rng.standard_normal((n, 3)) @ basis + 0.08 * rng.standard_normal((n, dim))).astype(np.float32)
    if kind == "clustered":
        centres = rng.standard_normal((max(2, n // 40), dim))
        return (centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)
    base = rng.standard_normal((n, dim))
    copies = rng.choice(n, size=n // 3, replace=False)
    base[copies] = base[rng.integers(0, n, len(copies))] + 0.05 * rng.standard_normal((len(copies), dim))
    return base.astype(np.float32)


def with_embeddings(table: pa.Table, emb: np.ndarray) -> pa.Table:
    col = pa.FixedSizeListArray.from_arrays(pa.array(emb.astype(np.float32).ravel()), emb.shape[1])
    return table.set_column(table.schema.get_field_index("ssl_embed"), "ssl_embed", col)


def geometry_table(kind: str, n: int, dim: int, seed: int) -> pa.Table:
    table = synthetic_scores(SyntheticSpec(n=n, dim=dim, seed=seed))[0]
    return with_embeddings(table, geometry_embeddings(kind, n, dim, seed))


def worst_pair(emb: np.ndarray) -> float:
    """Largest cosine between two different rows, by a float64 brute-force product."""
    x = emb.astype(np.float64)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return float(sim.max(initial=-1.0))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(GEOMETRIES), n=st.integers(150, 600), dim=st.sampled_from([4, 8, 24]),
       seed=st.integers(0, 10_000), min_cosine=st.sampled_from([0.01, 0.05, 0.2]), mode=st.sampled_from(MODES),
       chunk=st.sampled_from([1, 16, 4096]), frac=st.floats(0.1, 1.0))
def test_no_selected_pair_above_the_threshold_in_any_geometry_or_mode(kind: str, n: int, dim: int, seed: int,
                                                                    min_cosine: float, mode: dict, chunk: int,
                                                                    frac: float) -> None:
    table = geometry_table(kind, n, dim, seed)
    params = {"K_hours": frac * table_hours(table), "diversity.min_cosine": min_cosine, **mode}
    sel = run_selection(table, make_params(**params, **{"diversity.chunk_size": chunk}))
    assert worst_pair(sel.pool.emb[sel.selected]) <= 1.0 - min_cosine + 1e-6
    assert sel.fill.check is not None and len(sel.fill.check.violations) == 0 and not sel.fill.repaired
    exact = run_selection(table, make_params(**{**params, "diversity.search": "exact", "diversity.chunk_size": 1}))
    assert np.array_equal(exact.fill.order, sel.fill.order), "the selection depends on the mode or chunk size"


@pytest.mark.parametrize("kind", GEOMETRIES)
def test_same_bytes_for_any_chunk_size_and_cell_count_on_a_dense_table(kind: str) -> None:
    table = geometry_table(kind, 1500, 16, seed=3)
    base = {"K_hours": 0.5 * table_hours(table), "diversity.min_cosine": 0.02, "diversity.search": "ivf",
            "diversity.train_points_per_list": 10}
    frames = [run_selection(table, make_params(**base, **{"diversity.chunk_size": chunk,
                                                           "diversity.nlist": nlist})).frame()
              for chunk in (1, 97, 8192) for nlist in (4, 32)]
    first = frames[0].to_csv(index=False).encode()
    assert all(f.to_csv(index=False).encode() == first for f in frames[1:])
    sel = run_selection(table, make_params(**base))
    assert sel.fill.search["mode"] == "ivf" and sel.fill.search["nlist"] > 1
    assert worst_pair(sel.pool.emb[sel.selected]) <= 0.98 + 1e-6


def isotropic_speakers(n: int, dim: int, seed: int) -> np.ndarray:
    """The source benchmark's hard geometry in small: more speakers than the cells the cap allows, their rows
    spread about 50 degrees around their centre in many dimensions (an annulus holds a whole cell)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 3, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (centres[rng.integers(0, len(centres), n)] + 1.2 * spread).astype(np.float32)


def test_auto_searches_exactly_where_the_cells_would_prune_little() -> None:
    """``search: auto`` beyond ``exact_max_rows`` estimates the share of pairs the cells' rings would scan: on
    clustered rows the cells stay, on wide isotropic speakers it takes the exact blocks; the selection is the
    same as with either mode forced, and the check follows the greedy's choice."""
    base = {"diversity.min_cosine": 0.05, "diversity.search": "auto", "diversity.exact_max_rows": 100,
            "diversity.train_points_per_list": 10}
    for emb, chosen in ((geometry_embeddings("clustered", 3000, 16, seed=5), "ivf"),
                        (isotropic_speakers(3000, 64, seed=5), "exact")):
        table = with_embeddings(synthetic_scores(SyntheticSpec(n=len(emb), dim=emb.shape[1], seed=5))[0], emb)
        params = {**base, "K_hours": 0.5 * table_hours(table)}
        auto = run_selection(table, make_params(**params))
        search = auto.fill.search
        assert search["mode"] == chosen and (search["ring_share"] > AUTO_MAX_RING_SHARE) == (chosen == "exact")
        assert (search["nlist"] > 1) == (chosen == "ivf")
        assert auto.fill.check.method.startswith("exact all-pairs range search, " + (
            "brute force" if chosen == "exact" else "")) and not len(auto.fill.check.violations)
        for forced in ("exact", "ivf"):
            other = run_selection(table, make_params(**{**params, "diversity.search": forced}))
            assert "ring_share" not in other.fill.search
            assert np.array_equal(other.fill.order, auto.fill.order), forced


def test_the_check_recomputes_the_windows_beyond_their_memory_budget() -> None:
    """The greedy's recorded cell windows spare the check a product with the centroids; with no memory for them
    the check computes them itself: the same selection, and both checks exact and complete."""
    table = geometry_table("near_duplicate", 1500, 16, seed=3)
    base = {"K_hours": 0.5 * table_hours(table), "diversity.min_cosine": 0.02, "diversity.search": "ivf",
            "diversity.train_points_per_list": 10, "diversity.chunk_size": 200}
    kept = run_selection(table, make_params(**base))
    dropped = run_selection(table, make_params(**base, **{"diversity.window_memory_mb": 0.0}))
    assert kept.fill.index.windows and dropped.fill.index.windows is None
    assert kept.frame().to_csv(index=False) == dropped.frame().to_csv(index=False)
    for sel in (kept, dropped):
        assert sel.fill.check.method.startswith("exact all-pairs") and not len(sel.fill.check.violations)


def test_check_reports_the_exact_largest_cosine_and_finds_planted_violations() -> None:
    emb = geometry_embeddings("dense", 2000, 12, seed=7)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rows = np.arange(len(x))
    sim = x.astype(np.float64) @ x.astype(np.float64).T
    truth = np.argwhere(np.triu(sim > 0.995, k=1))
    params = DiversityParams(search="ivf", train_points_per_list=10)
    index = NeighbourIndex(x, rows, params, seed=0)
    check = check_selection(x, rows, 0.995, index.centroids, sample=200, seed=0, chunk=256)
    assert {tuple(p) for p in check.violations.tolist()} == set(map(tuple, truth.tolist()))
    assert check.nn_cosine_max_exact and check.nn_cosine_max == pytest.approx(worst_pair(x), abs=1e-6)
    spread = x[np.sort(np.random.default_rng(1).choice(len(x), 150, replace=False))]
    loose = check_selection(spread, np.arange(len(spread)), 0.999, None, sample=50, seed=0, chunk=64)
    assert loose.nn_cosine_max == pytest.approx(worst_pair(spread), abs=1e-6) and loose.nn_cosine_max_exact


@pytest.mark.parametrize("kind", GEOMETRIES)
def test_query_finds_exactly_the_brute_force_pairs_in_both_modes(kind: str) -> None:
    pool = load_pool(geometry_table(kind, 4000, 16, seed=4), ["distortion"])
    # nlist 4: cells of ~1,000 rows; 0: cells sized to the data
    for search, nlist in (("exact", 0), ("ivf", 0), ("ivf", 4)):
        params = DiversityParams(min_cosine=0.02, search=search, train_points_per_list=10, nlist=nlist)
        index = NeighbourIndex(pool.emb, np.arange(pool.n), params, seed=0)
        stored = np.arange(0, 1000)
        index.query(stored)
        index.add(stored, np.arange(len(stored)))
        batch = np.arange(1000, 1500)
        nb = index.query(batch)
        x = pool.emb.astype(np.float64)
        assert np.array_equal(nb.hit, (x[batch] @ x[stored].T > params.threshold).any(axis=1))
        pairs = exact_pairs(pool.emb[batch], params.threshold)
        got = {(q, int(b)) for q in range(len(batch)) for b in nb.nbrs[nb.lims[q]:nb.lims[q + 1]]}
        assert got == set(map(tuple, pairs.tolist()))
        if search == "ivf" and kind != "dense":
            assert index.nlist > 1 and index.products < len(batch) * (len(stored) + len(batch))


def test_recall_is_one_and_the_cells_save_work() -> None:
    """On low-intrinsic-dimension embeddings the annuli prune most cells (on isotropic ones they cannot)."""
    pool = load_pool(synthetic_scores(SyntheticSpec(n=6000, dim=32, seed=4, rows_per_source=100, latent_dim=4,
                                                    duplicate_fraction=0.05))[0], ["distortion"])
    sample = np.sort(np.random.default_rng(0).choice(pool.n, 3000, replace=False))
    result = pair_recall(pool.emb, np.arange(pool.n), sample, DiversityParams(min_cosine=0.02, search="ivf"), 0)
    assert result["exact_pairs"] > 20 and result["recall"] == 1.0
    assert result["pair_products"] < 0.5 * result["brute_force_products"]


def test_cell_store_grows_and_keeps_order() -> None:
    store = CellStore(nlist=3, dim=2)
    for k in range(40):
        store.append(np.array([k % 3]), np.array([[k, -k]], dtype=np.float32), np.array([k]), np.array([0.1 * k]))
    assert store.ids(1).tolist() == list(range(1, 40, 3))
    assert store.vectors(1)[:, 0].tolist() == list(range(1, 40, 3))
    assert store.rmax[1] == pytest.approx(3.7) and store.rmin[1] == pytest.approx(0.1)
    store.remove(np.array([4, 7]))
    assert store.ids(1).tolist() == [1, *range(10, 40, 3)]


@pytest.mark.parametrize("mode", [MODES[0], MODES[1]])
def test_a_broken_search_is_caught_by_the_check_and_repaired(monkeypatch: pytest.MonkeyPatch, mode: dict) -> None:
    """If the greedy's search missed pairs, the exact check drops the later pick of each and refills."""
    from curator.selection.diversity import ChunkNeighbours

    def blind(self, rows):  # noqa: ANN001, ANN202
        self._home, self._angle, _ = self.locate(np.ascontiguousarray(self.emb[rows]))
        return ChunkNeighbours(hit=np.zeros(len(rows), bool), lims=np.zeros(len(rows) + 1, np.int64),
                               nbrs=np.zeros(0, np.int64))

    monkeypatch.setattr(NeighbourIndex, "query", blind)
    table = geometry_table("near_duplicate", 600, 8, seed=2)
    sel = run_selection(table, make_params(K_hours=0.3 * table_hours(table), **{"diversity.min_cosine": 0.05},
                                           **mode))
    assert sel.fill.search["mode"] == mode["diversity.search"]
    assert sel.fill.repaired and "diversity_repaired" in [w.code for w in sel.warnings]
    assert worst_pair(sel.pool.emb[sel.selected]) <= 0.95 + 1e-6


def test_seeding_gives_one_cell_per_cluster_below_the_cap() -> None:
    """Cells sized to the data: 1,500 tight clusters and a cap of 5,000 cells give about one cell per cluster
    (a few clusters share one: with many seeds, some unrelated seed lies above the seeding threshold by chance)."""
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((1500, 64))
    label = np.repeat(np.arange(1500), 8)
    x = centres[label] + 0.3 * rng.standard_normal((len(label), 64))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    centroids = train_centroids(x, np.arange(len(x)), 5000, DiversityParams(train_points_per_list=1), seed=0)
    assert 0.8 * 1500 <= len(centroids) <= 1.2 * 1500
    home = np.argmax(x @ centroids.T, axis=1)
    whole = [np.bincount(home[label == k]).max() == 8 for k in range(1500)]
    assert np.mean(whole) >= 0.9


@pytest.mark.parametrize("nlist", [0, 3])
def test_check_with_the_greedys_cells_finds_the_same_pairs_and_maximum(nlist: int) -> None:
    """The final check may reuse the cells the greedy located the rows in, and the cell windows its queries
    reached: same pairs, same exact maximum (nlist 3: large cells, wide rings)."""
    emb = geometry_embeddings("near_duplicate", 3000, 12, seed=8)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rows = np.random.default_rng(2).permutation(len(x))
    index = NeighbourIndex(x, rows, DiversityParams(search="ivf", train_points_per_list=10, nlist=nlist), seed=0)
    for lo in range(0, len(rows), 700):
        index.query(rows[lo:lo + 700])
        index.add(rows[lo:lo + 700], np.arange(len(rows[lo:lo + 700])))
    fresh = check_selection(x, rows, 0.99, index.centroids, sample=100, seed=0, chunk=256)
    reused = check_selection(x, rows, 0.99, index.centroids, sample=100, seed=0, chunk=256,
                             located=index.cells_of(rows))
    windows = index.windows_for(rows)
    assert windows is not None and sum(len(w.rows) for w in windows) == len(rows)
    windowed = check_selection(x, rows, 0.99, index.centroids, sample=100, seed=0, chunk=256,
                               located=index.cells_of(rows), windows=windows)
    sim = x.astype(np.float64) @ x.astype(np.float64).T
    pos = np.argsort(rows)
    truth = {tuple(sorted((int(pos[a]), int(pos[b])))) for a, b in np.argwhere(np.triu(sim > 0.99, k=1))}
    assert len(truth) > 10 and fresh.method.startswith("exact all-pairs")
    for check in (fresh, reused, windowed):
        assert {tuple(p) for p in check.violations.tolist()} == truth
        assert check.nn_cosine_max == pytest.approx(worst_pair(x), abs=1e-6)


@pytest.mark.parametrize("n_queries", [3, 64])
def test_ring_kernels_agree_with_brute_force(n_queries: int) -> None:
    """One cell whose members all sit at one angle: every ring is the whole cell; the compiled scans must give
    exactly the brute-force pairs, hits and largest cosines, over the entries of the window they are asked for
    only, and the same whether the cell ranges run on one thread or two."""
    from curator.selection import workers
    from curator.selection.diversity import ANGLE_MARGIN, IN_BATCH, IN_STORE, Entries, ring_hits, ring_pairs

    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 8))
    x = base[rng.integers(0, 40, 128 + n_queries)] + 0.1 * rng.standard_normal((128 + n_queries, 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    members, queries = x[:128], np.ascontiguousarray(x[128:])
    threshold = 0.98
    theta = float(np.arccos(threshold)) + ANGLE_MARGIN
    # every query in the store window; the odd ones in the batch window too
    flag = np.where(np.arange(n_queries) % 2 == 1, IN_STORE | IN_BATCH, IN_STORE).astype(np.uint8)
    entries = Entries(np.array([0, n_queries]), np.arange(n_queries), np.full(n_queries, 0.5), flag)
    mptr, mang = np.array([0, 128]), np.full(128, 0.5)
    up, low = np.float32(threshold + 1e-5), np.float32(threshold - 1e-5)
    sim = queries.astype(np.float64) @ members.astype(np.float64).T
    truth = set(map(tuple, np.argwhere(sim > threshold).tolist()))
    assert len(truth) > 3
    for threads in (1, 2):
        with workers.threads(threads):
            best, mbest = np.full(n_queries, -2.0, np.float32), np.full(128, -2.0, np.float32)
            out_q, out_m, work = ring_pairs(queries, np.ones(n_queries, np.int64), entries, IN_STORE, mptr, members,
                                            np.zeros(128, np.int64), mang, theta, up, low, threshold, best, mbest)
            assert set(zip(out_q.tolist(), out_m.tolist(), strict=True)) == truth
            assert work == n_queries * 128 and np.allclose(best, sim.max(axis=1), atol=1e-5)
            assert np.allclose(mbest, sim.max(axis=0), atol=1e-5)
            out_q, _, work = ring_pairs(queries, np.ones(n_queries, np.int64), entries, IN_BATCH, mptr, members,
                                        np.zeros(128, np.int64), mang, theta, up, low, threshold,
                                        np.full(n_queries, -2.0, np.float32), np.full(128, -2.0, np.float32))
            assert work == (n_queries // 2) * 128 and set(out_q.tolist()) <= set(range(1, n_queries, 2))
            hit, _ = ring_hits(queries, entries, mptr, np.arange(128), mang, members, theta, up, low, threshold)
            assert np.array_equal(hit, (sim > threshold).any(axis=1))


def test_window_entries_match_a_dense_reference_when_the_buffers_grow() -> None:
    """The one-pass window extraction (a union-bounds test, then each window's own) gives the entries of a dense
    numpy reference, cell-major with queries ascending, also when far more cosines than its first capacity per
    row fall inside a window (every cosine of the first rows does here)."""
    from curator.selection.diversity import IN_BATCH, IN_STORE, window_entries

    rng = np.random.default_rng(3)
    nlist = 300
    sims = [rng.uniform(-1, 1, (n, nlist)).astype(np.float32) for n in (70, 45)]
    sims[0][:5] = 0.5  # inside both windows of every cell: 5 x 300 entries in the first block
    lo_a, hi_a = rng.uniform(-0.2, 0.6, nlist).astype(np.float32), np.full(nlist, 2.0, np.float32)
    lo_b, hi_b = rng.uniform(0.3, 0.9, nlist).astype(np.float32), rng.uniform(0.4, 1.0, nlist).astype(np.float32)
    lo_b[:10], hi_b[:10] = 3.0, -3.0  # cells without a batch window
    got = window_entries(sims, lo_a, hi_a, lo_b, hi_b, nlist)
    s = np.concatenate(sims)
    flag = (((s >= lo_a) & (s <= hi_a)) * IN_STORE | ((s >= lo_b) & (s <= hi_b)) * IN_BATCH).astype(np.uint8)
    cell, query = np.nonzero(flag.T)  # cell-major, queries ascending within a cell
    assert len(got.query) == len(query) > 5 * nlist
    assert np.array_equal(got.query, query) and np.array_equal(got.flag, flag[query, cell])
    assert np.array_equal(got.ptr, np.searchsorted(cell, np.arange(nlist + 1)))
    assert np.allclose(got.angle, np.arccos(np.clip(s[query, cell].astype(np.float64), -1, 1)))


def test_small_pages_switches_numpy_huge_page_advice_off_and_back() -> None:
    from curator.selection.workers import small_pages

    setter = np._core.multiarray._set_madvise_hugepage
    before = setter(True)
    try:
        with small_pages():
            assert setter(False) is False  # off inside (the call returns the setting it replaces)
        assert setter(True) is True  # restored after
    finally:
        setter(before)


def test_a_verdict_at_the_threshold_does_not_depend_on_the_products_last_bits() -> None:
    # another BLAS blocks the float32 product differently and may round a cosine at the threshold either way:
    # the verdict must be the float64 one of the two vectors, whatever float32 value the product gave
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 192)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact = float(x[0].astype(np.float64) @ x[1].astype(np.float64))
    for threshold, verdict in ((exact - 1e-9, True), (exact + 1e-9, False)):
        ulp = np.spacing(np.float32(threshold))
        for sims in (np.float32(threshold) - 2 * ulp, np.float32(threshold) + 2 * ulp):  # rounded down or up
            assert exceeds(np.array([[sims]], np.float32), x[:1], x[1:], threshold)[0, 0] == verdict

"""What each strategy is for, checked on synthetic pools built to make the difference visible."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curator.config import ConfigError
from curator.selection import BaseSelector, Ranking, register_selector
from curator.selection.registry import SELECTORS, build
from curator.selection.synthetic import SyntheticSpec, synthetic_scores
from curator.selection.tail import tail_mask

from .conftest import make_params, run_selection, table_hours


def with_embeddings(table: pa.Table, emb: np.ndarray) -> pa.Table:
    col = pa.FixedSizeListArray.from_arrays(pa.array(emb.astype(np.float32).ravel()), emb.shape[1])
    return table.set_column(table.schema.get_field_index("ssl_embed"), "ssl_embed", col)


def test_cvar_takes_the_tail_first_hardest_first(small_table: pa.Table) -> None:
    params = make_params(K_hours=0.3 * table_hours(small_table), alpha=0.1, **{"diversity.min_cosine": 0.0})
    sel = run_selection(small_table, params)
    pool = sel.pool
    tail, _ = tail_mask(pool.loss, pool.hours, pool.slice_code, np.ones(pool.n, bool), 0.1, pool.n_slices)
    assert sel.selected[tail].all()
    frame = sel.frame()
    assert set(frame["reason"]) == {"cvar_tail", "coverage"}
    for _, part in frame[frame["reason"] == "cvar_tail"].groupby("slice"):
        assert part["loss_proxy"].is_monotonic_decreasing


def test_alpha_changes_the_selection(small_table: pa.Table) -> None:
    K = 0.3 * table_hours(small_table)
    a = run_selection(small_table, make_params(K_hours=K, alpha=0.10)).frame()["utt_id"]
    b = run_selection(small_table, make_params(K_hours=K, alpha=0.05)).frame()["utt_id"]
    assert set(a) != set(b)


def test_alpha_extremes_pure_coverage_and_hardest_first(small_table: pa.Table) -> None:
    K = 0.3 * table_hours(small_table)
    coverage = run_selection(small_table, make_params(K_hours=K, alpha=0.0)).frame()
    hardest = run_selection(small_table, make_params(K_hours=K, alpha=1.0, **{"diversity.min_cosine": 0.0})).frame()
    assert set(coverage["reason"]) == {"coverage"}
    assert set(hardest["reason"]) == {"cvar_tail"}
    assert hardest["loss_proxy"].mean() > coverage["loss_proxy"].mean() + 0.05


def blob_table(n: int = 1200, seed: int = 3) -> tuple[pa.Table, np.ndarray]:
    """One big blob (90% of rows) and 12 small ones, all in one distortion slice."""
    table, _ = synthetic_scores(SyntheticSpec(n=n, dim=16, seed=seed))
    table = table.set_column(table.schema.get_field_index("distortion"), "distortion", pa.array(["noise"] * n))
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((13, 16)) * 3.0
    blob = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 13, n))
    emb = centres[blob] + 0.3 * rng.standard_normal((n, 16))
    return with_embeddings(table, emb), blob


def test_coverage_reaches_every_region_random_misses_some() -> None:
    """Blobs are directions here, so the embeddings are not centred (centring would scatter the big blob)."""
    table, blob = blob_table()
    K = 0.03 * table_hours(table)
    blob_of = dict(zip(table["utt_id"].to_pylist(), blob.tolist(), strict=True))
    covered = {}
    for name in ("coverage_only", "random"):
        frame = run_selection(table, make_params(name=name, K_hours=K, **{"diversity.min_cosine": 0.0,
                                                                          "diversity.center": False,
                                                                          "coverage.clusters": 16})).frame()
        covered[name] = len({blob_of[u] for u in frame["utt_id"]})
    assert covered["coverage_only"] == 13
    assert covered["random"] < covered["coverage_only"]


def test_mos_threshold_keeps_only_good_references_best_first(small_table: pa.Table) -> None:
    params = make_params(name="mos_threshold", K_hours=0.2 * table_hours(small_table),
                         **{"mos_threshold.min_score": 3.2})
    frame = run_selection(small_table, params).frame()
    assert len(frame) and (frame["mos_dns"] >= 3.2).all()
    assert set(frame["reason"]) == {"mos_above_threshold"}
    for _, part in frame.groupby("slice"):
        assert part.sort_values("order")["mos_dns"].is_monotonic_decreasing


@pytest.mark.parametrize("name", ["cvar", "random", "coverage_only"])
def test_quality_gate_applies_to_every_strategy(small_table: pa.Table, name: str) -> None:
    params = make_params(name=name, K_hours=0.3 * table_hours(small_table), **{"quality_gate.min_score": 3.0})
    sel = run_selection(small_table, params)
    assert (sel.pool.mos[sel.selected] >= 3.0).all()
    assert sel.gated.sum() == (sel.pool.mos < 3.0).sum() > 0


def test_penalty_zero_ignores_quotas_strict_penalty_keeps_them(small_table: pa.Table) -> None:
    """A hard slice asks for little; without a penalty cvar's utilities take more of it anyway."""
    K = 0.3 * table_hours(small_table)
    quotas = {"distortion": {"packet_loss": 0.05}}
    strict = run_selection(small_table, make_params(K_hours=K, quotas=quotas, alpha=1.0))
    free = run_selection(small_table, make_params(K_hours=K, quotas=quotas, alpha=1.0,
                                                  **{"penalties.quota_violation": 0.0}))
    s = strict.pool.slice_names.index("packet_loss")
    assert strict.pool.slice_hours(strict.selected)[s] <= strict.plan.feasible[s] + strict.pool.hours.max()
    assert free.pool.slice_hours(free.selected)[s] > 2 * strict.plan.feasible[s]


def test_different_seeds_draw_different_random_selections(small_table: pa.Table) -> None:
    K = 0.2 * table_hours(small_table)
    a = run_selection(small_table, make_params(name="random", K_hours=K, seed=1)).frame()["utt_id"]
    b = run_selection(small_table, make_params(name="random", K_hours=K, seed=2)).frame()["utt_id"]
    assert set(a) != set(b)


def test_nested_slice_keys_multiply_quotas(small_table: pa.Table) -> None:
    quotas = {"distortion": {"noise": 0.5}, "language": {"en": 0.4}}
    params = make_params(K_hours=0.3 * table_hours(small_table), slice_key=["distortion", "language"],
                         quotas=quotas, **{"diversity.min_cosine": 0.0})
    sel = run_selection(small_table, params)
    names = sel.pool.slice_names
    assert "noise/en" in names
    assert sel.plan.fraction[names.index("noise/en")] == pytest.approx(0.5 * 0.4)
    assert sel.plan.fraction.sum() == pytest.approx(1.0)
    noise = sum(sel.plan.fraction[i] for i, n in enumerate(names) if n.startswith("noise/"))
    assert noise == pytest.approx(0.5)


def test_unknown_strategy_names_the_choices() -> None:
    from curator.selection.plugins import validate

    with pytest.raises(ConfigError, match="coverage_only.*cvar.*mos_threshold.*random"):
        validate(make_params(name="cvarr"))


def test_new_strategy_is_one_class_and_a_decorator(small_table: pa.Table) -> None:
    @register_selector("shortest_first_test")
    class ShortestFirst(BaseSelector):
        def rank(self, pool, eligible):  # noqa: ANN001, ANN202
            return Ranking(utility=1.0 - pool.hours / pool.hours.max(), tiebreak=np.zeros(pool.n, np.int64),
                           reason=np.zeros(pool.n, np.int8), reasons=("short",))

    try:
        params = make_params(K_hours=0.1 * table_hours(small_table), **{"diversity.min_cosine": 0.0})
        selector = build("shortest_first_test", params=params)
        frame = selector.select(small_table)
        assert frame["duration_sec"].max() < small_table["duration_sec"].to_numpy().mean()
    finally:
        SELECTORS._items.pop("shortest_first_test")


def test_tail_coverage_is_reported_over_the_pool_and_over_the_eligible_rows(small_table: pa.Table) -> None:
    """The gate removes tail rows no selector can reach: the eligible figure is the one a selector controls."""
    from curator.selection.report import tail_stats

    params = make_params(K_hours=0.6 * table_hours(small_table), alpha=0.1,
                         **{"diversity.min_cosine": 0.0, "quality_gate.column": "ref_quality",
                            "quality_gate.min_score": 0.9})
    sel = run_selection(small_table, params)
    tails = tail_stats(sel)
    assert sel.gated.any()
    assert tails["tail_coverage_eligible"] == pytest.approx(1.0)
    assert tails["tail_coverage"] < tails["tail_coverage_eligible"]

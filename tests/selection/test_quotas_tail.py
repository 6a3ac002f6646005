"""Quota planning (water-filling, quota files) and the hours-weighted tail statistics, against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from curator.config import ConfigError
from curator.selection.quotas import load_quotas, water_fill
from curator.selection.tail import cvar, hours_quantile, tail_mask, value_at_risk


def test_water_fill_caps_at_supply_and_spreads_the_deficit_by_weight() -> None:
    target = np.array([50.0, 30.0, 20.0])
    supply = np.array([10.0, 100.0, 100.0])
    alloc = water_fill(target, supply, 100.0, target / 100.0)
    assert alloc[0] == 10.0
    assert alloc.sum() == pytest.approx(100.0)
    assert alloc[1] / alloc[2] == pytest.approx(30 / 20)


def test_water_fill_gives_zero_share_slices_the_rest_by_supply() -> None:
    # slice 0 (the only one with a share) is full; the two zero-share slices split the 20 h left 30:10
    alloc = water_fill(np.array([30.0, 0.0, 0.0]), np.array([10.0, 30.0, 10.0]), 30.0, np.array([1.0, 0.0, 0.0]))
    assert alloc.tolist() == pytest.approx([10.0, 15.0, 5.0])


def test_water_fill_cascades_when_a_receiver_fills_up() -> None:
    alloc = water_fill(np.array([60.0, 20.0, 20.0]), np.array([0.0, 25.0, 500.0]), 100.0, np.array([0.6, 0.2, 0.2]))
    assert alloc.tolist() == pytest.approx([0.0, 25.0, 75.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 100)), min_size=1, max_size=8), st.floats(0, 400))
def test_water_fill_never_exceeds_supply_or_budget(slices: list, budget: float) -> None:
    weight = np.array([w for w, _ in slices])
    supply = np.array([s for _, s in slices])
    share = weight / weight.sum() if weight.sum() > 0 else np.full(len(weight), 1 / len(weight))
    budget = min(budget, supply.sum())
    alloc = water_fill(share * budget, supply, budget, share)
    assert np.all(alloc <= supply + 1e-9)
    assert alloc.sum() == pytest.approx(budget, abs=1e-6)


def test_quotas_from_params_or_a_standalone_file(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"select": {"quotas": {"distortion": {"noise": 0.5}}}}))
    assert load_quotas(params, ["distortion"], {}) == {"distortion": {"noise": 0.5}}
    standalone = tmp_path / "quotas.yaml"
    standalone.write_text("distortion: {reverb: 0.12, noise: 0.14}\n")
    assert load_quotas(standalone, ["distortion"], {}) == {"distortion": {"reverb": 0.12, "noise": 0.14}}
    standalone.write_text("language: {en: 0.5}\n")
    with pytest.raises(ConfigError, match="quotas file .* quota column 'language' is not a slice-key column"):
        load_quotas(standalone, ["distortion"], {})
    standalone.write_text("distortion: {reverb: 0.7, noise: 0.6}\n")
    with pytest.raises(ConfigError, match="sum to 1.3000"):
        load_quotas(standalone, ["distortion"], {})


def brute_cvar(loss: np.ndarray, hours: np.ndarray, alpha: float) -> float:
    """CVaR by expanding every utterance into equal micro-hours."""
    units = np.repeat(loss, np.round(hours * 1000).astype(int))
    k = alpha * len(units)
    top = np.sort(units)[::-1]
    whole = int(np.floor(k))
    return float((top[:whole].sum() + (k - whole) * top[whole] if whole < len(top) else top.sum()) / k)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 20)), min_size=1, max_size=30), st.floats(0.05, 1.0))
def test_cvar_matches_brute_force(rows: list, alpha: float) -> None:
    loss = np.array([r[0] for r in rows])
    hours = np.array([r[1] for r in rows], dtype=float) / 1000 * 7
    hours = np.round(hours * 1000) / 1000
    assert cvar(loss, hours, alpha) == pytest.approx(brute_cvar(loss, hours, alpha), rel=1e-6, abs=1e-9)


def test_tail_mask_is_per_group_and_hours_weighted() -> None:
    loss = np.array([0.9, 0.8, 0.1, 0.95, 0.2, 0.3])
    hours = np.array([1.0, 1.0, 8.0, 1.0, 1.0, 8.0])
    group = np.array([0, 0, 0, 1, 1, 1])
    tail, var = tail_mask(loss, hours, group, np.ones(6, bool), 0.2, 2)
    assert tail.tolist() == [True, True, False, True, False, False]
    assert var.tolist() == [0.8, 0.95]
    empty, var0 = tail_mask(loss, hours, group, np.ones(6, bool), 0.0, 2)
    assert not empty.any() and np.isnan(var0).all()
    assert value_at_risk(loss[:3], hours[:3], 0.2) == 0.8


def test_hours_quantile_ranks_across_the_mask_only() -> None:
    q = hours_quantile(np.array([3.0, 1.0, 2.0, 9.0]), np.array([1.0, 1.0, 2.0, 5.0]), np.array([1, 1, 1, 0], bool))
    assert q.tolist() == [1.0, 0.25, 0.75, 0.0]


def brute_allocation(weight: np.ndarray, supply: np.ndarray, budget: float, steps: int = 4000) -> np.ndarray:
    """Proportional redistribution by brute force: hand out the budget in ``steps`` equal parts, each to the
    open slice furthest below its quota share (used / weight smallest); zero-weight slices only when the
    rest are full, by their supply. A part larger than a slice's room is split over the next slices."""
    alloc = np.zeros(len(weight))
    tol = 1e-12 * max(budget, 1.0)
    for _ in range(steps):
        part = budget / steps
        while part > tol:
            room = supply - alloc
            open_ = room > tol
            if not open_.any():
                return alloc
            pos = open_ & (weight > 0)
            key = np.where(pos, alloc / np.where(weight > 0, weight, 1.0), np.inf) if pos.any() else \
                np.where(open_, alloc / np.where(supply > 0, supply, 1.0), np.inf)
            s = int(np.argmin(key))
            take = min(part, room[s])
            alloc[s] += take
            part -= take
    return alloc


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(0, 1, allow_subnormal=False), st.floats(0, 2)), min_size=2, max_size=6),
       st.floats(0.05, 1.0))
def test_water_fill_matches_brute_force_redistribution(slices: list, budget_share: float) -> None:
    weight = np.array([w for w, _ in slices])
    supply = np.array([s for _, s in slices])
    if weight.sum() == 0 or supply.sum() == 0:
        return
    share = weight / weight.sum()
    budget = budget_share * supply.sum()
    alloc = water_fill(share * budget, supply, budget, share)
    # the brute force hands out whole parts: each slice can end up to one part off, and a slice that fills up
    # mid-part passes the rest on, so the bound is one part per slice
    assert alloc == pytest.approx(brute_allocation(share, supply, budget), abs=len(share) * budget / 4000 + 1e-9)


@pytest.mark.parametrize("penalty", [1.0, 10.0, 100.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_infeasible_quota_shortfall_goes_to_the_others_in_proportion(penalty: float, seed: int) -> None:
    """Selected hours per slice match the brute-force redistribution, at any penalty >= 1.

    Hours come in whole utterances: a slice ends within one utterance of its allocation, and the utterances
    that slices with a tiny quota could not take without overshooting go to the others, so the bound is two.
    """
    from curator.selection.synthetic import DISTORTIONS, SyntheticSpec, synthetic_scores

    from .conftest import make_params, run_selection, table_hours

    table = synthetic_scores(SyntheticSpec(n=400, dim=8, seed=seed, duration_sec=(2.0, 6.0)))[0]
    rng = np.random.default_rng(seed)
    fractions = rng.dirichlet(np.ones(len(DISTORTIONS)))
    starved = DISTORTIONS[seed % len(DISTORTIONS)]
    fractions[DISTORTIONS.index(starved)] += 1.0
    fractions /= fractions.sum()
    quotas = {"distortion": dict(zip(DISTORTIONS, fractions.tolist(), strict=True))}
    sel = run_selection(table, make_params(K_hours=0.5 * table_hours(table), quotas=quotas,
                                           **{"diversity.min_cosine": 0.0, "penalties.quota_violation": penalty}))
    plan = sel.plan
    assert plan.deficit[sel.pool.slice_names.index(starved)] > 0
    reference = brute_allocation(plan.share, plan.supply, sel.pool.hours[sel.selected].sum())
    got = sel.pool.slice_hours(sel.selected)
    assert np.all(np.abs(got - reference) <= 2 * sel.pool.hours.max() + 1e-4), (got, reference)
    assert np.all(np.abs(got - plan.feasible) <= 2 * sel.pool.hours.max() + 1e-4)


def test_the_greedy_takes_the_lower_tiebreak_first_across_slices() -> None:
    # four rows of equal utility in two slices: within a slice and between the slices' heads, the lower tiebreak
    # goes first (Ranking's contract), so the order is set by tiebreak alone
    from curator.selection.fill import SELECTED, greedy_fill
    from curator.selection.params import DiversityParams

    fill = greedy_fill(np.full(4, 0.5), np.array([3, 2, 1, 0]), np.ones(4, dtype=bool), np.ones(4),
                       np.array([0, 0, 1, 1]), np.array([0.5, 0.5]), 0.0, 10.0, np.zeros((4, 2), np.float32),
                       DiversityParams(min_cosine=0.0), seed=0)
    assert (fill.state == SELECTED).all()
    assert fill.order.tolist() == [3, 2, 1, 0]

"""Coverage quotas: per-slice hour targets as fractions of K, made feasible by proportional redistribution.

A quota file maps each slice-key column to ``{value: fraction of K}``. With several slice-key columns
(e.g. ``[distortion, language]``) the joint target is the product of the per-column fractions; a column
without quotas splits its cell in proportion to the eligible hours (supply). Values a column's quotas do not
list share the rest of that column (``1 - sum``) in proportion to supply.

Per-augmentation flags (``select.quotas.augmentations: {reverb: 0.5}``: half of K with reverberation,
whatever else was applied) are columns of their own: each listed flag adds a dimension to the slices with the
values ``+reverb`` (has it, share 0.5) and ``-reverb`` (the rest), so a flag quota is a quota like any other
and the greedy still merges disjoint slices. Flags and labels overlap (a row labelled ``reverb`` always has the
``reverb`` flag), so some combinations have no rows; with two or more quota columns the product target is then
raked (iterative proportional fitting over the slices that have rows) until every column's shares hold again,
instead of leaving the empty combinations' share to be spread over every other slice.

A target larger than its slice's supply is infeasible: the slice takes all it has, and the deficit goes to
the slices with hours to spare in proportion to their quotas (water-filling), so the budget stays K.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curator.config import ConfigError, apply_overrides, load_yaml
from curator.contract.flags import FLAGS_COLUMN
from curator.selection.params import validate_quotas
from curator.selection.pool import FLAG_SLICE_PREFIX, MISSING_LABEL, Pool

HOURS_TOL = 1e-9
"""Hours below this count as zero (float rounding of sums of durations)."""
RAKE_ITERS = 500
"""Most rounds of iterative proportional fitting (each rescales every quota column once)."""
RAKE_TOL = 1e-12
"""Raking stops once every column's shares are this close to their targets."""


SHARE_FLOOR = 1e-12
"""A slice's share of K below this counts as zero. The greedy's water-filling removes capped slices' shares
from their sum by subtraction, so a share at the scale of that sum's rounding error (a quota of 1e-300, or the
rest when the listed quotas sum to 1 within rounding) got an arbitrary allocation there while the plan gave it
the whole remainder; found by the hypothesis property test (a 1e-300 quota: a slice 0.0045 h, more than one
utterance, short of its plan). Zero-share slices share what is left in proportion to supply, in both."""

@dataclass
class QuotaPlan:
    """Per-slice hours: requested share, requested target, supply and the feasible allocation (sum = budget)."""

    fraction: np.ndarray
    target: np.ndarray
    supply: np.ndarray
    feasible: np.ndarray
    budget: float
    requested_budget: float
    unknown_values: dict[str, list[str]] = field(default_factory=dict)
    flag_quotas: dict[str, float] = field(default_factory=dict)
    """Requested share of K per flag (``select.quotas.augmentations``)."""

    @property
    def clipped(self) -> bool:
        """K exceeded the eligible pool's hours, so the budget is the whole eligible pool."""
        return self.budget < self.requested_budget

    @property
    def share(self) -> np.ndarray:
        """Quota shares the greedy merges by, over the slices that exist (quotas of absent values are spread
        in proportion); supply shares if no existing slice has a quota."""
        present = self.fraction[self.supply > HOURS_TOL].sum()
        if present > 0:
            return np.where(self.supply > HOURS_TOL, self.fraction, 0.0) / present
        return self.supply / self.supply.sum()

    @property
    def deficit(self) -> np.ndarray:
        """Hours a slice's target exceeds its supply (what had to be redistributed)."""
        return np.maximum(self.target - self.supply, 0.0)


def load_quotas(path: str | Path, slice_key: list[str], fallback: Mapping[str, Mapping[str, float]],
                overrides: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """Quotas from ``--quotas``: a params file (its ``select.quotas``) or a standalone quotas YAML.

    A standalone file is the spec's format, ``{distortion: {reverb: 0.12, ...}}``, per-augmentation flags under
    ``augmentations: {reverb: 0.5}``; ``fallback`` (the params' own quotas) is used when a params file has none.
    Command-line overrides of ``select.quotas`` win over the file in both cases (``select.quotas=...``
    replaces, ``select.quotas.distortion.reverb=0.2`` edits one). An empty ``augmentations: {}`` is dropped.
    """
    mine = [o for o in overrides if o.split("=", 1)[0].split(".")[:2] == ["select", "quotas"]]
    data = load_yaml(path)
    if "select" in data:
        section = data["select"] or {}
        quotas = section.get("quotas", fallback) if isinstance(section, Mapping) else fallback
        where = f"'{path}' select.quotas"
    else:
        quotas, where = data, f"quotas file '{path}'"
    if mine:
        quotas = apply_overrides({"select": {"quotas": dict(quotas) if isinstance(quotas, Mapping) else {}}},
                                 mine)["select"]["quotas"]
        where = f"{where} with override(s) {' '.join(mine)}"
    if not isinstance(quotas, Mapping) or not all(isinstance(v, Mapping) for v in quotas.values()):
        raise ConfigError(f"{where} must map a column to {{value: fraction}}, e.g. "
                          "distortion: {reverb: 0.12, noise: 0.14} or augmentations: {reverb: 0.5}")
    out = {str(col): {str(k): float(v) for k, v in fr.items()} for col, fr in quotas.items()
           if fr or col != FLAGS_COLUMN}  # `augmentations: {}` (the params' default) asks for nothing
    validate_quotas(out, slice_key, where)
    return out


def flag_quota_names(quotas: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The flags with a quota (``select.quotas.augmentations``), sorted: each is a slice dimension."""
    return sorted(quotas.get(FLAGS_COLUMN, {}))


def slice_quotas(quotas: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Quotas keyed by the pool's slice-key columns: ``augmentations: {reverb: q}`` becomes
    ``augmentations.reverb: {+reverb: q}`` (``-reverb`` shares the rest)."""
    out = {str(c): dict(v) for c, v in quotas.items() if c != FLAGS_COLUMN}
    for flag, share in quotas.get(FLAGS_COLUMN, {}).items():
        out[FLAG_SLICE_PREFIX + flag] = {f"+{flag}": float(share)}
    return out


def plan_quotas(pool: Pool, eligible: np.ndarray, K_hours: float,
                quotas: Mapping[str, Mapping[str, float]]) -> QuotaPlan:
    """Turn quotas into per-slice hour budgets that sum to ``min(K, eligible hours)``."""
    supply = pool.slice_hours(eligible)
    fraction, unknown = _fractions(pool, supply, slice_quotas(quotas))
    budget = float(min(K_hours, supply.sum()))
    target = fraction * budget
    return QuotaPlan(fraction=fraction, target=target, supply=supply,
                     feasible=water_fill(target, supply, budget, fraction), budget=budget,
                     requested_budget=float(K_hours), unknown_values=unknown,
                     flag_quotas={k: float(v) for k, v in sorted(quotas.get(FLAGS_COLUMN, {}).items())})


def water_fill(target: np.ndarray, supply: np.ndarray, budget: float, weight: np.ndarray) -> np.ndarray:
    """Cap each target at its supply, then hand the shortfall to slices with room, in proportion to ``weight``.

    Repeats until the allocation sums to ``budget`` or every slice is full (at most one round per slice).
    """
    alloc = np.minimum(target, supply)
    for _ in range(len(alloc) + 1):
        rest = budget - alloc.sum()
        room = supply - alloc
        open_ = room > HOURS_TOL
        if rest <= HOURS_TOL or not open_.any():
            break
        w = np.where(open_, weight, 0.0)
        if w.sum() <= 0:
            w = np.where(open_, room, 0.0)
        alloc = np.minimum(alloc + rest * (w / w.sum()), supply)
    return alloc


def _fractions(pool: Pool, supply: np.ndarray, quotas: Mapping[str, Mapping[str, float]]
               ) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Requested share of K per slice (sums to 1 unless every listed value is absent from the pool)."""
    values = np.asarray(pool.slice_values, dtype=object).reshape(pool.n_slices, len(pool.slice_key))
    fraction = np.ones(pool.n_slices)
    constrained = np.zeros(pool.n_slices, dtype=np.int64)
    unknown: dict[str, list[str]] = {}
    margins: list[tuple[np.ndarray, np.ndarray]] = []
    for j, col in enumerate(pool.slice_key):
        if col not in quotas:
            continue
        listed = quotas[col]
        labels = values[:, j]
        share = np.array([listed.get(v, np.nan) for v in labels], dtype=np.float64)
        unlisted = np.isnan(share)
        rest = max(1.0 - sum(listed.values()), 0.0)
        unlisted_supply = supply[unlisted].sum()
        if unlisted.any():
            by_value = _group_sum(labels[unlisted], supply[unlisted])
            share[unlisted] = [rest * by_value[v] / unlisted_supply if unlisted_supply > 0 else 0.0
                               for v in labels[unlisted]]
        fraction *= share
        codes = _codes(labels)
        # raking holds each listed value's share and the unlisted values' total; how the unlisted values
        # split their rest (by supply at first) is no requirement, so it may give way to other columns
        group = np.where(unlisted, -1, codes)
        uniq, group = np.unique(group, return_inverse=True)
        wanted = np.array([rest if g < 0 else listed[labels[codes == g][0]] for g in uniq.tolist()])
        margins.append((group.astype(np.int64), wanted))
        constrained = constrained * len(labels) + codes
        present = set(labels)
        absent = sorted(v for v in listed if v not in present)
        if absent:
            unknown[col] = absent
    # columns without quotas split each quota cell in proportion to supply
    cell_supply = _group_sum(constrained, supply)
    within = np.array([supply[i] / cell_supply[c] if cell_supply[c] > 0 else 0.0
                       for i, c in enumerate(constrained)])
    fraction = fraction * within
    if len(margins) > 1:
        fraction = _rake(fraction, supply > HOURS_TOL, margins)
    return np.where(fraction < SHARE_FLOOR, 0.0, fraction), unknown


def _rake(fraction: np.ndarray, present: np.ndarray, margins: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Iterative proportional fitting of ``fraction`` over the ``present`` slices to the column shares.

    ``margins`` holds, per quota column, each slice's value code and each value's requested share; shares of
    values with no present slice are left out and the rest renormalised (as ``QuotaPlan.share`` does). A
    no-op (bit for bit) when the product already meets every column's shares, e.g. when no combination is
    empty. Rescaling a whole value at a time keeps the split inside a quota cell (by supply) unchanged.
    """
    if not present.any():
        return fraction
    targets = []
    for codes, share in margins:
        has = np.bincount(codes[present], minlength=len(share)) > 0
        wanted = np.where(has, share, 0.0)
        targets.append(wanted / wanted.sum() if wanted.sum() > 0 else wanted)
    f = np.where(present, fraction, 0.0)
    if f.sum() <= 0:
        return fraction
    f = f / f.sum()

    def worst() -> float:
        return max(float(np.abs(np.bincount(c, weights=f, minlength=len(t)) - t).max())
                   for (c, _), t in zip(margins, targets, strict=True))

    if worst() <= RAKE_TOL:
        return fraction
    for _ in range(RAKE_ITERS):
        for (codes, _), target in zip(margins, targets, strict=True):
            current = np.bincount(codes, weights=f, minlength=len(target))
            ratio = np.divide(target, current, out=np.zeros_like(target), where=current > 0)
            f = f * ratio[codes]
        if worst() <= RAKE_TOL:
            break
    return f


def _codes(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels.astype(str), return_inverse=True)[1].astype(np.int64)


def _group_sum(keys: np.ndarray, weights: np.ndarray) -> dict:
    out: dict = {}
    for k, w in zip(keys.tolist(), weights.tolist(), strict=True):
        out[k] = out.get(k, 0.0) + w
    return out


def quota_report(plan: QuotaPlan, selected: np.ndarray, names: list[str], blocked: np.ndarray | None = None) -> dict:
    """Per-slice quota fit of a selection (``selected`` = hours per slice) plus totals.

    ``blocked`` (hours per slice the diversity rule excluded) explains the deviation of a slice that ran out:
    the plan counts its whole supply, the greedy could only take what diversity left, and the shortfall went
    to the other slices in proportion.
    """
    blocked = np.zeros(len(names)) if blocked is None else blocked
    slices = {
        name: {
            "quota_fraction": float(plan.fraction[s]),
            "target_hours": float(plan.target[s]),
            "supply_hours": float(plan.supply[s]),
            "feasible_hours": float(plan.feasible[s]),
            "selected_hours": float(selected[s]),
            "deviation_hours": float(selected[s] - plan.feasible[s]),
            "diversity_blocked_hours": float(blocked[s]),
            "infeasible": bool(plan.deficit[s] > HOURS_TOL),
        }
        for s, name in enumerate(names)
    }
    return {
        "slices": slices,
        "requested_K_hours": plan.requested_budget,
        "budget_hours": plan.budget,
        "budget_clipped_to_pool": plan.clipped,
        "infeasible_slices": [n for n, v in slices.items() if v["infeasible"]],
        "redistributed_hours": float(plan.budget - np.minimum(plan.target, plan.supply).sum()),
        "max_abs_deviation_hours": float(np.abs(selected - plan.feasible).max()) if len(names) else 0.0,
        "quota_values_absent_from_pool": plan.unknown_values,
    }


def label_coverage(pool: Pool, plan: QuotaPlan, eligible: np.ndarray, selected: np.ndarray) -> dict:
    """Hours per primary ``distortion`` label and per augmentation flag: pool, eligible, selected, and the
    selected share; for a flag with a quota also the requested and planned hours and the shortfall.

    Labels partition the hours; flags overlap (a row has several), so flag hours add up to more than the
    total. ``planned_hours`` is the flag's part of the water-filled plan (below the requested hours when the
    pool cannot supply them); ``shortfall_hours`` is what the selection lacks of it (the greedy keeps each
    slice within about one utterance of its allocation).
    """
    total = float(pool.hours[selected].sum())
    out: dict[str, dict] = {}
    if "distortion" in pool.columns.column_names:
        labels = pool.columns["distortion"].to_numpy(zero_copy_only=False)
        codes, names = pd.factorize(pd.Series(labels, dtype=object).fillna(MISSING_LABEL), sort=True)
        out["distortion"] = {str(name): _hours(pool.hours, codes == k, eligible, selected, total)
                             for k, name in enumerate(names)}
    if pool.flags is not None:
        flags: dict[str, dict] = {}
        for j, name in enumerate(pool.flags.names):
            entry = _hours(pool.hours, pool.flags.matrix[:, j], eligible, selected, total)
            if name in plan.flag_quotas:
                column = pool.slice_key.index(FLAG_SLICE_PREFIX + name)
                has = np.array([v[column] == f"+{name}" for v in pool.slice_values], dtype=bool)
                planned = float(plan.feasible[has].sum())
                entry.update({"quota_fraction": plan.flag_quotas[name],
                              "requested_hours": plan.flag_quotas[name] * plan.budget,
                              "planned_hours": planned,
                              "shortfall_hours": max(planned - entry["selected_hours"], 0.0)})
            flags[name] = entry
        out[FLAGS_COLUMN] = flags
    return out


def _hours(hours: np.ndarray, rows: np.ndarray, eligible: np.ndarray, selected: np.ndarray, total: float) -> dict:
    picked = float(hours[rows & selected].sum())
    return {"pool_hours": float(hours[rows].sum()), "eligible_hours": float(hours[rows & eligible].sum()),
            "selected_hours": picked, "share_of_selection": picked / total if total > 0 else 0.0}

"""What a selection is worth, as numbers: ``metrics/select.json`` and the CSV's ``_meta.json`` sidecar.

Tail statistics use one yardstick for every strategy: the alpha-tail (per slice, by hours) of the candidate
pool after ``data.filters`` and before the quality gate (``tail_coverage``), so that ``dvc metrics diff``
compares like with like. Rows the gate removed can never be picked, so that figure is capped below 1 by the
gate; ``tail_coverage_eligible`` measures the same thing on the eligible pool's own tail (what the selector
could reach).

Every tail figure (VaR, CVaR, tail hours and coverage, the loss means) is computed over **speech rows only**.
Speech-free rows (``speech_free``: silent target) have no measured difficulty: the score stage gives them the
constant ``score.loss_proxy.speech_free_hardness`` (1.0, the maximum, by default), so counted in, about 5% of
the mini pool would fill half of an alpha = 0.1 tail and the VaR would be that constant. They are reported
apart under ``speech_free`` (rows, hours, selected rows and hours, the share of their hours selected).

The ground-truth share of imperfect references is computed here, after selection; no selector reads it. On
the default mini dataset it is in-sample for the gated strategies: ``select.quality_gate.min_score`` was
chosen on that same ground truth (``imperfect_ref_share.threshold_note``; held-out figures from another
dataset seed: ``benchmarks/validate_gate.py``, quoted in the mini dataset card). Warnings the selection raised
are counted by code under ``warnings``.
"""

from __future__ import annotations

import math
import os
from types import EllipsisType
from typing import Any

import numpy as np
import pandas as pd

from curator.contract.curated import SCHEMA_VERSION as CURATED_SCHEMA_VERSION
from curator.contract.curated import VERSION_KEY as CURATED_VERSION_KEY
from curator.selection.base import Selection
from curator.selection.fill import BLOCKED
from curator.selection.quotas import label_coverage, quota_report
from curator.selection.tail import cvar, descending, tail_mask, tail_order, value_at_risk

TRUTH_COLUMNS = ("utt_id", "imperfect")
WARNING_CODES = ("quota_values_absent", "budget_clipped", "budget_unused", "diversity_repaired")
"""Every warning code, always present in select.json so ``dvc metrics diff`` shows a new one appearing."""
THRESHOLD_NOTE = ("in-sample on the default mini dataset (dataset.seed 0), whose ground truth "
                  "select.quality_gate.min_score was chosen on (before the unused-first noise and RIR draws "
                  "redrew its rows); held-out seed: benchmarks/validate_gate.py")
"""Said beside ``imperfect_ref_share`` whenever the quality gate is on."""
STATS_BLOCK_ELEMENTS = 1 << 22
"""Largest similarity block of the sample statistics (16 MiB of float32)."""


class TruthError(ValueError):
    """The ground-truth file is malformed; the message names the file and row."""


def read_truth(path: str | os.PathLike[str] | None) -> pd.DataFrame | None:
    """The ``utt_id,imperfect,defect`` CSV, or None when not given or header-only (no ground truth)."""
    if path is None:
        return None
    if not os.path.isfile(path):
        raise TruthError(f"truth file '{path}' does not exist; omit --truth, or give a header-only "
                         "'utt_id,imperfect,defect' file when the dataset has no ground truth")
    truth = pd.read_csv(path, dtype={"utt_id": str}, keep_default_na=False)
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise TruthError(f"truth file '{path}' lacks column(s) {', '.join(missing)}; expected utt_id,imperfect,defect")
    if truth.empty:
        return None
    flag = pd.to_numeric(truth["imperfect"], errors="coerce")
    bad = ~flag.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TruthError(f"truth file '{path}' row {row + 2}: imperfect must be 0 or 1, got {truth['imperfect'].iloc[row]!r}")
    if truth["utt_id"].duplicated().any():
        dup = truth["utt_id"][truth["utt_id"].duplicated()].iloc[0]
        raise TruthError(f"truth file '{path}' lists utt_id '{dup}' twice")
    return pd.DataFrame({"utt_id": truth["utt_id"], "imperfect": flag.astype(np.int8)})


def tail_stats(sel: Selection) -> dict[str, Any]:
    """Pool tail (per-slice alpha-tails), VaR, tail coverage and loss CVaR of the pool and of the selection.

    Over speech rows only (see the module docstring); speech-free rows are summarised by :func:`speech_free_stats`.
    """
    pool, alpha, chosen = sel.pool, sel.params.alpha, sel.selected
    speech = ~pool.speech_free
    # one sort of the speech rows serves both tails (the eligible ones keep their relative order) and one
    # descending order both pool figures
    order = tail_order(pool.loss, pool.slice_code, speech)
    tail, var = tail_mask(pool.loss, pool.hours, pool.slice_code, speech, alpha, pool.n_slices, order=order)
    tail_hours = float(pool.hours[tail].sum())
    picked_tail = float(pool.hours[tail & chosen].sum())
    reach, _ = tail_mask(pool.loss, pool.hours, pool.slice_code, sel.eligible & speech, alpha, pool.n_slices,
                         order=order[sel.eligible[order]])
    reach_hours = float(pool.hours[reach].sum())
    picked = chosen & speech
    speech_loss, speech_hours = pool.loss[speech], pool.hours[speech]
    hardest = descending(speech_loss)
    return {
        "alpha": alpha,
        "speech_rows": int(speech.sum()),
        "speech_hours": float(pool.hours[speech].sum()),
        "var_pool": value_at_risk(speech_loss, speech_hours, alpha, order=hardest),
        "var_per_slice": dict(zip(pool.slice_names, var.tolist(), strict=True)),
        "pool_tail_hours": tail_hours,
        "selected_tail_hours": picked_tail,
        "tail_coverage": picked_tail / tail_hours if tail_hours > 0 else math.nan,
        "eligible_tail_hours": reach_hours,
        "tail_coverage_eligible": float(pool.hours[reach & chosen].sum()) / reach_hours if reach_hours > 0 else math.nan,
        "loss_mean_pool": _wmean(pool.loss, pool.hours, speech),
        "loss_cvar_pool": cvar(speech_loss, speech_hours, alpha, order=hardest),
        "loss_mean": _wmean(pool.loss, pool.hours, picked),
        "loss_cvar": cvar(pool.loss[picked], pool.hours[picked], alpha),
    }


def speech_free_stats(sel: Selection) -> dict[str, Any]:
    """Speech-free rows, apart from the tail figures: how many, how many hours, and how much was selected."""
    pool, free = sel.pool, sel.pool.speech_free
    hours = float(pool.hours[free].sum())
    picked = free & sel.selected
    picked_hours = float(pool.hours[picked].sum())
    total_picked = float(pool.hours[sel.selected].sum())
    return {
        "rows": int(free.sum()),
        "hours": hours,
        "eligible_rows": int((free & sel.eligible).sum()),
        "selected_rows": int(picked.sum()),
        "selected_hours": picked_hours,
        "share_selected": picked_hours / hours if hours > 0 else math.nan,
        "share_of_selection": picked_hours / total_picked if total_picked > 0 else math.nan,
    }


def imperfect_share(sel: Selection, truth: pd.DataFrame | None) -> dict[str, Any] | None:
    """Hours share of imperfect references in the selection and in the pool (rows the truth knows)."""
    if truth is None:
        return None
    flags = pd.Series(truth["imperfect"].to_numpy(), index=truth["utt_id"].to_numpy())
    known = flags.reindex(sel.pool.utt_id)
    has = known.notna().to_numpy()
    bad = known.fillna(0).to_numpy().astype(bool)
    h = sel.pool.hours

    def share(mask: np.ndarray) -> float:
        total = h[mask & has].sum()
        return float(h[mask & has & bad].sum() / total) if total > 0 else math.nan

    return {"selected": share(sel.selected), "pool": share(np.ones(sel.pool.n, dtype=bool)),
            "rows_with_truth": int(has.sum())}


def build_metrics(sel: Selection, truth: pd.DataFrame | None, tails: dict[str, Any],
                  imperfect: dict[str, Any] | None | EllipsisType = ...) -> dict[str, Any]:
    """The nested-numbers ``metrics/select.json`` (``tails`` from :func:`tail_stats`) for ``dvc metrics diff``;
    ``imperfect``: :func:`imperfect_share` of this selection and ``truth`` when already computed."""
    pool, chosen, p = sel.pool, sel.selected, sel.params
    hours = pool.slice_hours(chosen)
    blocked = pool.slice_hours(sel.fill.state == BLOCKED)
    quota = quota_report(sel.plan, hours, pool.slice_names, blocked)
    check = sel.fill.check
    nn = (check.summary() if check is not None else
          nearest_selected_stats(pool.emb, np.flatnonzero(chosen), p.diversity.stats_sample, p.seed))
    metrics: dict[str, Any] = {
        "n_selected": int(chosen.sum()),
        "hours_selected": float(pool.hours[chosen].sum()),
        "budget_hours": sel.plan.budget,
        "hours_per_slice": dict(zip(pool.slice_names, hours.tolist(), strict=True)),
        "coverage": label_coverage(pool, sel.plan, sel.eligible, chosen),
        "tail": tails,
        "speech_free": speech_free_stats(sel),
        "mos_mean": _wmean(pool.mos, pool.hours, chosen) if pool.mos is not None else None,
        "diversity": {
            "min_cosine": p.diversity.min_cosine,
            "blocked_rows": int((sel.fill.state == BLOCKED).sum()),
            "queried_rows": sel.fill.queried,
            "violations_repaired": len(sel.fill.repaired),
            **nn,
            **sel.fill.search,
        },
        "quota": {
            "max_abs_deviation_hours": quota["max_abs_deviation_hours"],
            "redistributed_hours": quota["redistributed_hours"],
            "infeasible_slices": len(quota["infeasible_slices"]),
            "overflow_hours": float(pool.hours[chosen & ~sel.in_quota].sum()),
            "diversity_blocked_hours": float(blocked.sum()),
        },
        "pool": {
            "rows": pool.n,
            "hours": float(pool.hours.sum()),
            "eligible_rows": int(sel.eligible.sum()),
            "eligible_hours": float(pool.hours[sel.eligible].sum()),
            "gated_rows": int(sel.gated.sum()),
            "mos_mean": _wmean(pool.mos, pool.hours, np.ones(pool.n, bool)) if pool.mos is not None else None,
        },
        "excluded": dict(sorted(pool.excluded.items())),
        "warnings": warning_counts(sel),
    }
    share = imperfect_share(sel, truth) if imperfect is ... else imperfect
    if share is not None:
        if p.quality_gate.min_score is not None:
            share["threshold_note"] = THRESHOLD_NOTE
        metrics["imperfect_ref_share"] = share
    return finite_or_none(metrics)


def build_meta(sel: Selection, metrics: dict[str, Any], config: dict[str, Any],
               scores_sha256: str, truth_path: str | None) -> dict[str, Any]:
    """The ``<out>_meta.json`` sidecar: what produced the CSV and everything known about it."""
    pool, chosen = sel.pool, sel.selected
    return finite_or_none({
        CURATED_VERSION_KEY: CURATED_SCHEMA_VERSION,
        "config": config,
        "scores_path": pool.source,
        "scores_sha256": scores_sha256,
        "truth_path": truth_path,
        "n_selected": int(chosen.sum()),
        "hours_selected": metrics["hours_selected"],
        "hours_per_slice": metrics["hours_per_slice"],
        "coverage": metrics["coverage"],
        "quota_report": quota_report(sel.plan, pool.slice_hours(chosen), pool.slice_names,
                                     pool.slice_hours(sel.fill.state == BLOCKED)),
        "speech_free": metrics["speech_free"],
        "excluded": metrics["excluded"],
        "warnings": [{"code": w.code, "count": w.count, "message": w.message} for w in sel.warnings],
        "stop": sel.fill.stop,
        "strategy": {"name": sel.params.name, "reasons": list(sel.ranking.reasons)},
    })


def warning_counts(sel: Selection) -> dict[str, int]:
    """Per warning code, how many rows or values it concerns (0 for every code that did not fire)."""
    counts = dict.fromkeys(WARNING_CODES, 0)
    for w in sel.warnings:
        counts[w.code] = counts.get(w.code, 0) + w.count
    return counts


def nearest_selected_stats(emb: np.ndarray, rows: np.ndarray, sample: int, seed: int) -> dict[str, Any]:
    """Exact nearest-selected-neighbour cosine of a seeded sample (diversity off: no full check ran)."""
    if len(rows) < 2 or sample == 0:
        return {"check": "off", "nn_cosine_max": math.nan, "nn_cosine_mean": math.nan, "nn_sample": 0}
    probe = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(sample, len(rows)), replace=False))
    best = np.full(len(probe), -np.inf, dtype=np.float32)
    xq = np.ascontiguousarray(emb[rows[probe]])
    step = max(1, STATS_BLOCK_ELEMENTS // len(probe))
    for lo in range(0, len(rows), step):
        sims = xq @ emb[rows[lo:lo + step]].T
        own = (probe >= lo) & (probe < lo + step)
        sims[np.flatnonzero(own), probe[own] - lo] = -np.inf
        np.maximum(best, sims.max(axis=1), out=best)
    return {"check": "off (diversity disabled; sample only)", "nn_cosine_max": float(best.max()),
            "nn_cosine_max_exact": False, "nn_cosine_mean": float(best.mean()), "nn_sample": int(len(probe))}


def finite_or_none(obj: Any) -> Any:
    """Replace NaN/inf floats (and numpy scalars) by JSON-safe values: None for non-finite numbers."""
    if isinstance(obj, dict):
        return {str(k): finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _wmean(values: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> float:
    """Hours-weighted mean over ``mask`` rows with a value (NaN MOS of noise-only rows is left out)."""
    mask = mask & np.isfinite(values)
    w = weights[mask]
    return float(np.dot(values[mask], w) / w.sum()) if w.sum() > 0 else math.nan

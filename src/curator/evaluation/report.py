"""Summaries of per-utterance scores, every one PAIRED: enhanced output against the noisy input on the same rows.

For each metric, a row where the enhanced or the noisy score is missing (a failed metric, no reference) is
dropped from both sides and counted, so means, improvements, tails and slices always compare the same
utterances. Improvements come with a paired bootstrap confidence interval (:mod:`curator.evaluation.paired`).
The headline block (``metrics/eval.json``) holds means, tails and the URGENT rank; per-slice figures go to their
own file so that ``dvc metrics diff`` stays readable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from curator.evaluation.metrics import Metric
from curator.evaluation.paired import PairedStats, mark_family, paired_stats, worst_mean
from curator.evaluation.ranking import OFFICIAL_2026, official_rank, rank_systems
from curator.evaluation.slicing import present, slice_masks

NOISY_PREFIX = "noisy_"
GAIN_COLUMN = "output_to_input_db"
POOL_WEIGHT_SUFFIX = "_pool_weight"
"""``<metric>_pool_weight``: each utterance's weight in the metric's official set-level figure
(:attr:`Metric.pool_weights`), in the per-utterance table where the metric has one."""
SYSTEMS = ("enhanced", "noisy")
SPEECH_FREE_LABEL = "speech_free"
"""The primary ``distortion`` label of a speech-free row (``curator.datasets.labels``; a test keeps them in step)."""
DECIMALS = 6
"""Figures are rounded to this many decimals in the JSON files: far below any metric's meaning."""


def tail_mean(values: np.ndarray, fraction: float, higher_is_better: bool) -> float:
    """Mean of the worst ``fraction`` of the finite values (at least one); NaN if none are finite."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(worst_mean(v, fraction, higher_is_better)) if v.size else math.nan


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), DECIMALS)


def paired_block(stats: PairedStats, a: str = "enhanced", b: str = "noisy") -> dict[str, Any]:
    """One metric's A-vs-B figures (default: enhanced vs noisy), JSON-ready; ``improvement`` = A - B."""
    return {
        "n": stats.n, "n_dropped": stats.n_dropped,
        a: _clean(stats.mean_a), b: _clean(stats.mean_b),
        "improvement": _clean(stats.diff), "ci_low": _clean(stats.ci_low), "ci_high": _clean(stats.ci_high),
        "win_rate": _clean(stats.win_rate), "verdict": stats.verdict, "p_value": _clean(stats.p_value),
        f"tail_{a}": _clean(stats.tail_a), f"tail_{b}": _clean(stats.tail_b),
        "tail_improvement": _clean(stats.tail_diff), "tail_ci_low": _clean(stats.tail_ci_low),
        "tail_ci_high": _clean(stats.tail_ci_high),
    }


def _pair(df: pd.DataFrame, metric: Metric, tail_fraction: float, bootstrap: Mapping[str, Any]) -> PairedStats:
    return paired_stats(df[metric.name].to_numpy(dtype=np.float64),
                        df[NOISY_PREFIX + metric.name].to_numpy(dtype=np.float64), metric.higher_is_better,
                        n_boot=int(bootstrap["n_boot"]), seed=int(bootstrap["seed"]),
                        confidence=float(bootstrap["confidence"]), tail_fraction=tail_fraction)


def pooled_block(df: pd.DataFrame, metric: Metric) -> dict[str, Any] | None:
    """The metric's official set-level figure for enhanced and noisy (the mean weighted by ``<metric>_pool_weight``,
    e.g. CAcc's 1 - pooled CER) over the rows of the paired figures (both values finite) of positive weight; None
    where the table has no weights or no such row."""
    column = metric.name + POOL_WEIGHT_SUFFIX
    if column not in df.columns:
        return None
    a, b = (df[c].to_numpy(dtype=np.float64) for c in (metric.name, NOISY_PREFIX + metric.name))
    w = df[column].to_numpy(dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b) & (w > 0)
    if not keep.any():
        return None
    return {"enhanced": _clean(float(np.average(a[keep], weights=w[keep]))),
            "noisy": _clean(float(np.average(b[keep], weights=w[keep]))), "n": int(keep.sum())}


def _rank(blocks: Mapping[str, Mapping[str, Any]], stand_ins: Mapping[str, str]) -> dict[str, Any] | None:
    """The official URGENT rank of enhanced vs noisy (paired means, or a metric's official set-level figure where
    its block has one, ``pooled``), and the project's rank over all metrics; ``official_stand_ins`` names the
    official metrics it computed with another model (only when there are any)."""
    means = pd.DataFrame({m: [(b.get("pooled") or b)["enhanced"], (b.get("pooled") or b)["noisy"]]
                          for m, b in blocks.items()}, index=list(SYSTEMS), dtype=float).dropna(axis=1, how="all")
    if means.empty:
        return None
    out: dict[str, Any] = {"all_metrics": {s: _clean(v) for s, v in rank_systems(means)["overall"].items()}}
    try:
        ranking = official_rank(means)
    except ValueError:
        out["official"] = None
        out["official_missing"] = "none of the official 2026 metrics was computed"
        return out
    out["official"] = {s: _clean(v) for s, v in ranking.table["overall"].items()}
    out["official_missing"] = {c: list(ms) for c, ms in ranking.missing.items()}
    used = {m for ms in OFFICIAL_2026.values() for m in ms} & set(means.columns)
    if substituted := {m: stand_ins[m] for m in sorted(used & set(stand_ins))}:
        out["official_stand_ins"] = substituted
    return out


def summarise_split(df: pd.DataFrame, metrics: Sequence[Metric], tail_fraction: float,
                    bootstrap: Mapping[str, Any], stand_ins: Mapping[str, str] | None = None) -> dict[str, Any]:
    """eval.json's headline block for one split (paired per metric); ``stand_ins``: metric -> the model it ran in
    place of the official one (:meth:`Metric.substitute`)."""
    blocks = {m.name: paired_block(_pair(df, m, tail_fraction, bootstrap)) for m in metrics}
    for m in metrics:  # the official set-level figure beside the paired means, where it is another one (CAcc)
        if (pooled := pooled_block(df, m)) is not None:
            blocks[m.name]["pooled"] = pooled
    no_ref = ~df["has_reference"].astype(bool)
    # a row without a usable reference is speech-free when labelled so (every such row, on a table without labels);
    # the others are speech whose reference is missing (a folder's unpaired noisy file) or silent: intrusive
    # metrics skip them too, but their gain is no speech-free figure, so they are counted apart
    free = no_ref & (df["distortion"] == SPEECH_FREE_LABEL) if "distortion" in df.columns else no_ref
    return {
        "n_utts": len(df),
        "n_with_reference": int((~no_ref).sum()),
        "n_speech_without_reference": int((no_ref & ~free).sum()),
        "tail_fraction": tail_fraction,
        "confidence": float(bootstrap["confidence"]),  # two-sided level of every ci_low/ci_high below
        "metrics": blocks,
        "urgent_rank": _rank(blocks, stand_ins or {}),
        "speech_free": {  # speech-free inputs: intrusive metrics skip them; did the model attenuate?
            "n": int(free.sum()),
            GAIN_COLUMN: _clean(float(df.loc[free, GAIN_COLUMN].mean())) if free.any() else None,
        },
    }


def slice_summary(df: pd.DataFrame, metrics: Sequence[Metric], slices: Sequence[str], tail_fraction: float,
                  bootstrap: Mapping[str, Any], verdicts: Mapping[str, Any]) -> dict[str, Any]:
    """``{slice column: {value: {metric: paired block}}}``: the per-slice file beside eval.json (slices by
    :func:`curator.evaluation.slicing.slice_masks`: one per value, or one per flag of ``augmentations``).

    Each block's ``verdict`` is its family's (:func:`curator.evaluation.paired.mark_family`: the values of one
    column are one family per metric; ``verdicts`` holds ``min_utts`` and ``correction``), with its ``q_value``."""
    out: dict[str, Any] = {}
    for key in present(df, slices):
        out[key] = {}
        for value, rows in slice_masks(df, key):  # numeric slices (sr) sort numerically; flags overlap
            part = df[rows]
            out[key][value] = {"n": len(part),
                               **{m.name: paired_block(_pair(part, m, tail_fraction, bootstrap)) for m in metrics}}
        for m in metrics:
            mark_family([v[m.name] for v in out[key].values()], m.higher_is_better, float(bootstrap["confidence"]),
                        int(verdicts["min_utts"]), str(verdicts["correction"]))
    return out


def snr_bins(snr_db: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Input-SNR slice labels by ``edges`` (``<0``, ``0..5``, ..., ``>=15``); ``unknown`` without an SNR."""
    labels = [f"<{edges[0]:g}", *(f"{lo:g}..{hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)),
              f">={edges[-1]:g}"] if edges else ["all"]
    values = pd.to_numeric(snr_db, errors="coerce").to_numpy(dtype=np.float64)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    out = np.asarray(labels, dtype=object)[np.minimum(idx, len(labels) - 1)]
    out[~np.isfinite(values)] = "unknown"
    return pd.Series(out, index=snr_db.index)

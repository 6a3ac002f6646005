"""Summaries of per-utterance scores: means, the noisy-input baseline, tails and per-slice means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from curator.evaluation.metrics import Metric
from curator.evaluation.ranking import rank_systems

NOISY_PREFIX = "noisy_"
GAIN_COLUMN = "output_to_input_db"
SYSTEMS = ("enhanced", "noisy")


def tail_mean(values: np.ndarray, fraction: float, higher_is_better: bool) -> float:
    """Mean of the worst ``fraction`` of the finite values (at least one); NaN if none are finite."""
    v = np.asarray(values, dtype=np.float64)
    v = np.sort(v[np.isfinite(v)])
    if not v.size:
        return math.nan
    k = max(1, math.ceil(fraction * v.size))
    return float(v[:k].mean() if higher_is_better else v[-k:].mean())


def _clean(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


def _expected(df: pd.DataFrame, metric: Metric) -> int:
    """How many utterances a metric should score (those with a reference, for intrusive ones)."""
    return int(df["has_reference"].sum()) if metric.needs_reference else len(df)


def _means(df: pd.DataFrame, metrics: Sequence[Metric], prefix: str = "") -> dict[str, float | None]:
    return {m.name: _clean(df[prefix + m.name].mean()) for m in metrics}


def slice_means(df: pd.DataFrame, metrics: Sequence[Metric], slices: Sequence[str]) -> dict[str, Any]:
    """``{slice column: {value: {n, <metric>, noisy_<metric>}}}`` via one groupby per slice column."""
    cols = [m.name for m in metrics] + [NOISY_PREFIX + m.name for m in metrics]
    out: dict[str, Any] = {}
    for key in slices:
        grouped = df.groupby(key, sort=True, dropna=False)  # numeric slices (sr) sort numerically
        table = grouped[cols].mean().join(grouped.size().rename("n"))
        out[key] = {str(v): {c: (int(row[c]) if c == "n" else _clean(row[c])) for c in ["n", *cols]}
                    for v, row in table.iterrows()}
    return out


def summarise_split(df: pd.DataFrame, metrics: Sequence[Metric], tail_fraction: float,
                    slices: Sequence[str]) -> dict[str, Any]:
    """eval.json's block for one split."""
    enhanced, noisy = _means(df, metrics), _means(df, metrics, NOISY_PREFIX)
    means = pd.DataFrame([{m.name: df[p + m.name].mean() for m in metrics} for p in ("", NOISY_PREFIX)],
                         index=list(SYSTEMS))
    ranks = rank_systems(means.dropna(axis=1, how="all"))["overall"] if means.notna().any().any() else None
    return {
        "n_utts": len(df),
        "n_with_reference": int(df["has_reference"].sum()),
        "n_failed": {m.name: _expected(df, m) - int(df[m.name].notna().sum()) for m in metrics},
        "enhanced": enhanced,
        "noisy": noisy,
        "improvement": {k: None if enhanced[k] is None or noisy[k] is None else round(enhanced[k] - noisy[k], 6)
                        for k in enhanced},
        "tail": {
            "fraction": tail_fraction,
            "enhanced": {m.name: _clean(tail_mean(df[m.name].to_numpy(), tail_fraction, m.higher_is_better))
                         for m in metrics},
            "noisy": {m.name: _clean(tail_mean(df[NOISY_PREFIX + m.name].to_numpy(), tail_fraction,
                                               m.higher_is_better)) for m in metrics},
        },
        "speech_free": {  # rows without a usable reference: intrusive metrics skip them; did the model attenuate?
            "n": int((~df["has_reference"]).sum()),
            GAIN_COLUMN: _clean(df.loc[~df["has_reference"], GAIN_COLUMN].mean()),
        },
        "urgent_rank": None if ranks is None else {s: _clean(ranks[s]) for s in SYSTEMS},
        "slices": slice_means(df, metrics, slices),
    }

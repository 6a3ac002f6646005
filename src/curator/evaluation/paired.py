"""Paired comparison of two systems on the same utterances: mean difference with a bootstrap confidence
interval and p-value, win rate, tail (CVaR) difference and a verdict.

Every figure is computed over the utterances that BOTH systems scored (a row where either side's metric failed
is dropped from both and counted), so a difference never mixes the systems with different test sets. The
bootstrap resamples utterances with a seeded generator, in blocks that bound memory, so the same inputs give
the same interval on every machine.

Per-slice verdicts (:func:`family_verdicts`) are stricter than one comparison's: a slice of a handful of
utterances gets no verdict, and the values of one slice column are tested as a family (Benjamini-Hochberg on
the bootstrap p-values), so splitting a test set into many slices does not multiply chance findings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control

TOO_FEW = "too few utterances"
VERDICTS = ("better", "worse", "no evidence", TOO_FEW)
CORRECTIONS = ("bh", "none")
"""How a family of slice comparisons is tested: Benjamini-Hochberg false-discovery control, or each alone."""
JSON_DECIMALS = 6
"""Decimals of the q-values :func:`mark_family` writes (as the reports' other figures)."""
BOOTSTRAP_BLOCK = 256
"""Resamples drawn at once: a (block, n) index matrix bounds the bootstrap's memory."""


@dataclass(frozen=True)
class PairedStats:
    """System A against system B on one metric (``diff`` = A - B in the metric's units)."""

    n: int
    n_dropped: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    win_rate: float
    tail_a: float
    tail_b: float
    tail_diff: float
    tail_ci_low: float
    tail_ci_high: float
    verdict: str
    p_value: float = math.nan
    """Two-sided bootstrap p-value of the mean difference (:func:`bootstrap_p`)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def worst_mean(values: np.ndarray, fraction: float, higher_is_better: bool, axis: int = -1) -> np.ndarray:
    """CVaR: the mean of the worst ``fraction`` (at least one value) along ``axis``."""
    v = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = v.shape[axis]
    k = max(1, math.ceil(fraction * n))
    worst = np.take(v, np.arange(k) if higher_is_better else np.arange(n - k, n), axis=axis)
    return worst.mean(axis=axis)


def verdict(ci_low: float, ci_high: float, higher_is_better: bool) -> str:
    """"better" when the whole interval of A - B favours A, "worse" when it favours B, else "no evidence"."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "no evidence"
    lo, hi = (ci_low, ci_high) if higher_is_better else (-ci_high, -ci_low)
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no evidence"


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from a bootstrap distribution of ``B`` resampled differences: twice
    ``(k + 1) / (B + 1)``, ``k`` the resamples on the far side of 0 (at most 1). The ``+ 1`` (Davison and
    Hinkley's estimate) keeps it above 0: no finite number of resamples shows a p-value of 0, only one below
    ``2 / (B + 1)``. For the usual sizes (``B * (1 - confidence) / 2`` a whole number) it is below
    ``1 - confidence`` exactly when the percentile interval at that confidence excludes 0, up to the quantile's
    interpolation."""
    boot = np.asarray(boot, dtype=np.float64)
    if boot.size == 0 or not np.isfinite(boot).all():
        return math.nan
    far = min(int(np.count_nonzero(boot <= 0.0)), int(np.count_nonzero(boot >= 0.0)))
    return float(min(1.0, 2.0 * (far + 1) / (boot.size + 1)))


def family_verdicts(n: np.ndarray, diff: np.ndarray, p: np.ndarray, higher_is_better: bool, confidence: float,
                    min_utts: int, correction: str) -> tuple[np.ndarray, list[str]]:
    """Verdicts of a family of comparisons (the values of one slice column, one metric, one pair of systems).

    A comparison over fewer than ``min_utts`` utterances gets :data:`TOO_FEW`; the others are tested together:
    with ``correction="bh"`` their p-values become Benjamini-Hochberg adjusted ones (q-values), so the expected
    share of false verdicts among the family's verdicts stays at ``1 - confidence``; with ``"none"`` each keeps
    its own. A comparison is "better" / "worse" (by the sign of ``diff``) when its q-value is below
    ``1 - confidence``. Returns the q-values (NaN where none) and the verdicts, in input order.
    """
    n = np.asarray(n, dtype=np.int64)
    diff = np.asarray(diff, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    tested = (n >= min_utts) & np.isfinite(p) & np.isfinite(diff)
    q = np.full(len(p), math.nan)
    if tested.any():
        q[tested] = false_discovery_control(p[tested], method="bh") if correction == "bh" else p[tested]
    alpha = 1.0 - confidence
    verdicts = []
    for i in range(len(p)):
        if n[i] < min_utts:
            verdicts.append(TOO_FEW)
        elif not tested[i] or q[i] >= alpha or diff[i] == 0.0:
            verdicts.append("no evidence")
        else:
            verdicts.append("better" if (diff[i] > 0) == higher_is_better else "worse")
    return q, verdicts


def mark_family(blocks: Sequence[MutableMapping[str, Any]], higher_is_better: bool, confidence: float,
                min_utts: int, correction: str, n_key: str = "n", diff_key: str = "improvement") -> None:
    """:func:`family_verdicts` on JSON blocks (each with ``n_key``, ``diff_key`` and ``p_value``): sets each
    block's ``verdict`` to the family's and adds its ``q_value`` (None where none), in place."""
    def num(b: Mapping[str, Any], key: str) -> float:
        v = b.get(key)
        return math.nan if v is None else float(v)

    q, verdicts = family_verdicts(np.array([int(b[n_key]) for b in blocks], dtype=np.int64),
                                  np.array([num(b, diff_key) for b in blocks]),
                                  np.array([num(b, "p_value") for b in blocks]), higher_is_better, confidence,
                                  min_utts, correction)
    for b, qi, v in zip(blocks, q, verdicts, strict=True):
        b["q_value"] = round(float(qi), JSON_DECIMALS) if math.isfinite(qi) else None
        b["verdict"] = v


def paired_stats(a: np.ndarray, b: np.ndarray, higher_is_better: bool, n_boot: int, seed: int,
                 confidence: float = 0.95, tail_fraction: float = 0.1) -> PairedStats:
    """Compare per-utterance scores ``a`` and ``b`` (same utterances, same order; NaN where a metric failed)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired_stats: {a.shape} vs {b.shape}; both systems must score the same utterances")
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    n = int(a.size)
    if n == 0:
        nan = math.nan
        return PairedStats(0, int((~both).sum()), nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
                           "no evidence")
    d = a - b
    better = d > 0 if higher_is_better else d < 0
    win_rate = float((better.sum() + 0.5 * (d == 0).sum()) / n)
    boot_mean, boot_tail = _bootstrap(a, b, higher_is_better, n_boot, seed, tail_fraction)
    q = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot_mean, [q, 1.0 - q]) if n > 1 else (math.nan, math.nan)
    tlo, thi = np.quantile(boot_tail, [q, 1.0 - q]) if n > 1 else (math.nan, math.nan)
    tail_a = float(worst_mean(a, tail_fraction, higher_is_better))
    tail_b = float(worst_mean(b, tail_fraction, higher_is_better))
    return PairedStats(
        n=n, n_dropped=int((~both).sum()), mean_a=float(a.mean()), mean_b=float(b.mean()), diff=float(d.mean()),
        ci_low=float(lo), ci_high=float(hi), win_rate=win_rate, tail_a=tail_a, tail_b=tail_b,
        tail_diff=tail_a - tail_b, tail_ci_low=float(tlo), tail_ci_high=float(thi),
        verdict=verdict(float(lo), float(hi), higher_is_better),
        p_value=bootstrap_p(boot_mean) if n > 1 else math.nan)


def _bootstrap(a: np.ndarray, b: np.ndarray, higher_is_better: bool, n_boot: int, seed: int,
               tail_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap distributions of mean(A - B) and CVaR(A) - CVaR(B), resampling utterances (pairs kept)."""
    rng = np.random.default_rng(seed)
    n = a.size
    means, tails = np.empty(n_boot), np.empty(n_boot)
    for lo in range(0, n_boot, BOOTSTRAP_BLOCK):
        hi = min(n_boot, lo + BOOTSTRAP_BLOCK)
        idx = rng.integers(0, n, size=(hi - lo, n))
        ra, rb = a[idx], b[idx]
        means[lo:hi] = (ra - rb).mean(axis=1)
        tails[lo:hi] = worst_mean(ra, tail_fraction, higher_is_better) - worst_mean(rb, tail_fraction,
                                                                                   higher_is_better)
    return means, tails

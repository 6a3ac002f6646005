"""Hours-weighted tails of ``loss_proxy`` (higher = harder): per-slice alpha-tails, VaR and CVaR.

The tail of a slice is its hardest utterances, hardest first, up to ``alpha`` times the slice's hours; an
utterance straddling that mark belongs to the tail when most of it lies inside (so tail hours are unbiased
rather than always rounded up). VaR is the loss of the easiest utterance in the tail. CVaR is the hours-weighted mean loss
of the top ``alpha`` share of hours, the boundary utterance counted fractionally (Rockafellar-Uryasev).
"""

from __future__ import annotations

import numpy as np


def tail_mask(loss: np.ndarray, hours: np.ndarray, group: np.ndarray, mask: np.ndarray, alpha: float,
              n_groups: int, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-group alpha-tail membership over ``mask`` rows, and each group's VaR (NaN for an empty tail).

    Ties in loss are broken by row index, so the result does not depend on anything but the row order,
    which the pool fixes by ``utt_id``. ``order``: :func:`tail_order` of these rows when already sorted (or of
    a superset, filtered to them: a sorted list stays sorted).
    """
    if order is None:
        order = tail_order(loss, group, mask)
    g = group[order]
    h = hours[order]
    cum = np.cumsum(h)
    group_start = np.concatenate(([0.0], cum))[np.searchsorted(g, np.arange(n_groups))]
    middle = cum - 0.5 * h - group_start[g]
    totals = np.bincount(g, weights=h, minlength=n_groups)
    inside = middle <= alpha * totals[g]
    tail = np.zeros(len(loss), dtype=bool)
    tail[order[inside]] = True
    var = np.full(n_groups, np.inf)
    np.minimum.at(var, g[inside], loss[order[inside]])
    return tail, np.where(np.isfinite(var), var, np.nan)


def tail_order(loss: np.ndarray, group: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ``mask`` rows sorted by (group, loss descending, row): the order :func:`tail_mask` walks."""
    rows = np.flatnonzero(mask)
    return rows[np.lexsort((rows, -loss[rows], group[rows]))]


def descending(loss: np.ndarray) -> np.ndarray:
    """Positions of ``loss`` hardest first, ties in position order (the order :func:`value_at_risk` and
    :func:`cvar` walk)."""
    return np.argsort(-loss, kind="stable")


def value_at_risk(loss: np.ndarray, hours: np.ndarray, alpha: float, order: np.ndarray | None = None) -> float:
    """Smallest loss among the hardest utterances holding ``alpha`` of the hours (same rule as the tail);
    ``order``: :func:`descending` of ``loss`` when already computed."""
    if len(loss) == 0 or alpha <= 0:
        return float("nan")
    order = descending(loss) if order is None else order
    cum = np.cumsum(hours[order])
    inside = (cum - 0.5 * hours[order]) <= alpha * cum[-1]
    return float(loss[order][inside].min()) if inside.any() else float("nan")


def cvar(loss: np.ndarray, hours: np.ndarray, alpha: float, order: np.ndarray | None = None) -> float:
    """Hours-weighted mean loss of the hardest ``alpha`` share of hours (NaN when empty or alpha = 0);
    ``order``: :func:`descending` of ``loss`` when already computed."""
    if len(loss) == 0 or alpha <= 0:
        return float("nan")
    order = descending(loss) if order is None else order
    h = hours[order]
    cum = np.cumsum(h)
    mass = alpha * cum[-1]
    weight = np.clip(mass - (cum - h), 0.0, h)
    return float(np.dot(weight, loss[order]) / weight.sum())


def hours_quantile(values: np.ndarray, hours: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hours-weighted rank of each ``mask`` row's value in (0, 1] (1 = the largest); 0 outside ``mask``.

    Comparable across slices, unlike a rank within one slice.
    """
    rows = np.flatnonzero(mask)
    out = np.zeros(len(values))
    if len(rows) == 0:
        return out
    order = rows[np.lexsort((rows, values[rows]))]
    cum = np.cumsum(hours[order])
    out[order] = cum / cum[-1]
    return out

"""``cvar``: per slice, the hardest ``alpha`` share of hours (the CVaR tail) first, then coverage.

Within each slice the hours-weighted top-``alpha`` tail of ``loss_proxy`` (at or above the slice's VaR) is
offered hardest first; the rest of the slice's quota goes to the cluster-balanced coverage order of its
non-tail rows (``selection/coverage.py``). ``alpha = 0`` is pure coverage; ``alpha`` at or above the budget's
share of the pool is hardest-first.

Speech-free rows are ranked by the constant ``loss_proxy`` the score stage gives them,
``score.loss_proxy.speech_free_hardness`` (1.0 by default: the maximum, because the baseline is known to fail on
noise-only input), not by a measured difficulty. That is deliberate and that knob controls it: with
``distortion`` in ``select.slice_key`` they form their own slice, whose quota bounds them and whose tail order is
the ``utt_id`` tie-break; without it they sit at the top of every slice's tail. Lower the knob to rank them
lower. The tail figures in ``metrics/select.json`` leave them out either way (``selection/report.py``).
"""

from __future__ import annotations

import numpy as np

from curator.selection.base import BaseSelector, Ranking
from curator.selection.coverage import coverage_order
from curator.selection.pool import Pool
from curator.selection.registry import register_selector
from curator.selection.tail import hours_quantile, tail_mask

TAIL_FLOOR = 0.5
"""Tail utilities lie in (0.5, 1], coverage utilities in (0, 0.5]: every tail row outranks every other."""


@register_selector("cvar")
class CvarSelector(BaseSelector):
    reads = ("alpha", "coverage")

    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        p = self.params
        tail, var = tail_mask(pool.loss, pool.hours, pool.slice_code, eligible, p.alpha, pool.n_slices)
        cover = coverage_order(pool.emb, pool.slice_code, eligible & ~tail, p.coverage, p.seed)
        hardness = hours_quantile(pool.loss, pool.hours, eligible)
        utility = np.where(tail, TAIL_FLOOR + (1.0 - TAIL_FLOOR) * hardness, TAIL_FLOOR * cover.utility())
        return Ranking(
            utility=utility,
            tiebreak=np.where(tail, 0, cover.visit),
            reason=np.where(tail, 0, 1).astype(np.int8),
            reasons=("cvar_tail", "coverage"),
            info={"tail": tail, "var_per_slice": var},
        )


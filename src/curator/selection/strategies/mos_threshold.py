"""``mos_threshold``: keep references whose DNSMOS OVRL (``mos_dns``) reaches a threshold, best first.

Rows below ``select.mos_threshold.min_mos`` are never picked; the quotas are then filled from the rest in
order of decreasing reference MOS (hours-weighted rank), under the shared budget and diversity rules.
"""

from __future__ import annotations

import numpy as np

from curator.selection.base import BaseSelector, Ranking
from curator.selection.pool import Pool
from curator.selection.registry import register_selector
from curator.selection.tail import hours_quantile


@register_selector("mos_threshold")
class MosThresholdSelector(BaseSelector):
    needs_mos = True

    def restrict(self, pool: Pool) -> np.ndarray:
        assert pool.mos is not None and self.params.mos_threshold.min_mos is not None
        return pool.mos >= self.params.mos_threshold.min_mos

    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        assert pool.mos is not None
        return Ranking(utility=hours_quantile(pool.mos, pool.hours, eligible),
                       tiebreak=np.zeros(pool.n, dtype=np.int64), reason=np.zeros(pool.n, dtype=np.int8),
                       reasons=("mos_above_threshold",))

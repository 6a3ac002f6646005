"""``mos_threshold``: keep references whose quality score reaches a threshold, best first.

The score is ``select.mos_threshold.column`` (default ``mos_dns``, the reference DNSMOS OVRL; the scoring
composite ``ref_quality`` also sees band-limited references, which DNSMOS rates as clean). Rows below
``select.mos_threshold.min_score`` are never picked; the quotas are then filled from the rest in
order of decreasing reference MOS (hours-weighted rank), under the shared budget and diversity rules.
Noise-only examples (silent target, no MOS) pass and rank in the middle of their own slice.
"""

from __future__ import annotations

import numpy as np

from curator.selection.base import BaseSelector, Ranking
from curator.selection.pool import Pool
from curator.selection.registry import register_selector
from curator.selection.tail import hours_quantile

SPEECH_FREE_UTILITY = 0.5
"""Utility of noise-only rows (no MOS to rank by): the middle of the [0, 1] scale."""


@register_selector("mos_threshold")
class MosThresholdSelector(BaseSelector):
    reads = ("mos_threshold",)

    def restrict(self, pool: Pool) -> np.ndarray:
        gate = self.params.mos_threshold
        assert gate.min_score is not None
        return pool.speech_free | (pool.quality[gate.column] >= gate.min_score)

    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        score = pool.quality[self.params.mos_threshold.column]
        rated = hours_quantile(score, pool.hours, eligible & ~pool.speech_free)
        return Ranking(utility=np.where(pool.speech_free, SPEECH_FREE_UTILITY, rated),
                       tiebreak=np.zeros(pool.n, dtype=np.int64), reason=np.zeros(pool.n, dtype=np.int8),
                       reasons=("mos_above_threshold",))

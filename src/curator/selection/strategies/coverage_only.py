"""``coverage_only``: quotas and diversity, no difficulty: the cluster-balanced coverage order of every slice."""

from __future__ import annotations

import numpy as np

from curator.selection.base import BaseSelector, Ranking
from curator.selection.coverage import coverage_order
from curator.selection.pool import Pool
from curator.selection.registry import register_selector


@register_selector("coverage_only")
class CoverageSelector(BaseSelector):
    reads = ("coverage",)

    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        cover = coverage_order(pool.emb, pool.slice_code, eligible, self.params.coverage, self.params.seed)
        return Ranking(utility=cover.utility(), tiebreak=cover.visit, reason=np.zeros(pool.n, dtype=np.int8),
                       reasons=("coverage",))

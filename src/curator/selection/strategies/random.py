"""``random``: a seeded uniform draw under the same budget, quotas and diversity: the control of every comparison."""

from __future__ import annotations

import numpy as np

from curator.selection.base import BaseSelector, Ranking
from curator.selection.pool import Pool
from curator.selection.registry import register_selector


@register_selector("random")
class RandomSelector(BaseSelector):
    def rank(self, pool: Pool, eligible: np.ndarray) -> Ranking:
        utility = np.random.default_rng(self.params.seed).random(pool.n)
        return Ranking(utility=utility, tiebreak=np.zeros(pool.n, dtype=np.int64),
                       reason=np.zeros(pool.n, dtype=np.int8), reasons=("random",))

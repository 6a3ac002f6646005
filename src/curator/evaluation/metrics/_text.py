"""Edit distance for the ASR- and phoneme-based metrics (CAcc, LPS)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def edit_distance(hyp: Sequence[object], ref: Sequence[object]) -> int:
    """Levenshtein distance (unit insert, delete, substitute); one vectorised row update per ``hyp`` symbol.

    The in-row insertion chain ``d[j] = min(d[j], d[j-1] + 1)`` is a running minimum of ``d[k] - k`` plus ``j``.
    """
    ref_ids = np.array([hash(s) for s in ref], dtype=np.int64)
    cols = np.arange(len(ref) + 1)
    row = cols.copy()
    for i, h in enumerate(hyp, start=1):
        sub = row[:-1] + (ref_ids != hash(h))
        cand = np.concatenate([[i], np.minimum(row[1:] + 1, sub)])
        row = np.minimum.accumulate(cand - cols) + cols
    return int(row[-1])

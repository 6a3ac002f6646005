"""``data.filters``: the one implementation, shared by scoring, the probe and selection.

The core works on plain column arrays, so a manifest DataFrame and a scores Arrow table are filtered by the
same code and agree on every row (the score stage and the select stage must keep the same subset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from curator.contract.data import Filters

SECONDS_PER_HOUR = 3600.0
LIST_FILTERS = (("language", "languages"), ("sr", "sample_rates"), ("distortion", "distortions"))
"""(column, ``data.filters`` field) of the membership filters."""


def max_hours_mask(utt_id: Any, duration_sec: Any, max_hours: float, seed: int) -> np.ndarray:
    """Rows kept by ``data.filters.max_hours``: a seeded pseudo-random subset whose hours stay within the cap.

    Rows are ordered by a seeded hash of their ``utt_id`` (vectorised SipHash), so the subset depends neither on
    row order nor on which other rows are present; scoring and selection share it and so agree on the subset.
    """
    ids = np.asarray(utt_id, dtype=object)
    keys = pd.util.hash_array(ids, hash_key=f"{seed:016d}"[-16:], categorize=False)
    order = np.lexsort((ids.astype(str), keys))
    inside = np.cumsum(np.asarray(duration_sec, dtype=np.float64)[order]) / SECONDS_PER_HOUR <= max_hours
    mask = np.zeros(len(ids), dtype=bool)
    mask[order[inside]] = True
    return mask


def filter_mask(columns: Mapping[str, np.ndarray], filters: Filters, seed: int,
                keep: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """Rows that pass ``filters`` (among ``keep`` when given) and how many rows each filter removed.

    ``columns`` maps ``utt_id, duration_sec, language, sr, distortion`` to equally long arrays. Empty lists
    mean "all"; ``max_hours`` keeps the seeded subset of :func:`max_hours_mask` among the rows still kept.
    """
    n = len(columns["utt_id"])
    mask = np.ones(n, dtype=bool) if keep is None else keep.copy()
    dropped: dict[str, int] = {}
    for column, name in LIST_FILTERS:
        allowed = getattr(filters, name)
        if allowed:
            inside = np.isin(np.asarray(columns[column], dtype=object), np.asarray(list(allowed), dtype=object))
            removed = int((mask & ~inside).sum())
            if removed:
                dropped[column] = removed
            mask &= inside
    if filters.max_hours is not None:
        rows = np.flatnonzero(mask)
        inside = max_hours_mask(np.asarray(columns["utt_id"], dtype=object)[rows],
                                np.asarray(columns["duration_sec"], dtype=np.float64)[rows], filters.max_hours, seed)
        if (~inside).any():
            dropped["max_hours"] = int((~inside).sum())
        mask[rows[~inside]] = False
    return mask, dropped


def apply_filters(df: pd.DataFrame, filters: Filters, seed: int = 0) -> tuple[pd.DataFrame, dict[str, int]]:
    """:func:`filter_mask` on a manifest DataFrame: the kept rows sorted by utt_id, and the removed counts."""
    mask, dropped = filter_mask({c: df[c].to_numpy() for c in ("utt_id", "duration_sec", "language", "sr",
                                                                "distortion")}, filters, seed)
    return df[mask].sort_values("utt_id", kind="stable").reset_index(drop=True), dropped

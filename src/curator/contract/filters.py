"""``data.filters``: the one implementation, shared by scoring, the probe and selection.

The core works on plain column arrays, so a manifest DataFrame and a scores Arrow table are filtered by the
same code and agree on every row (the score stage and the select stage must keep the same subset).

List filters keep rows whose value is one of the listed ones (``languages``, ``sample_rates``,
``distortions``: the primary label) or that have any of the listed flags (``augmentations``: per-augmentation
flags, ``contract/flags.py``, "with reverberation whatever else was applied"). A listed value that no row of
the pool has is an error (:class:`FilterError`) naming it, with the values the pool does have and a
did-you-mean: a typo or a code of another convention (``eng`` for ``en``) would otherwise keep nothing, or
silently less than asked.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from curator.config import ConfigError
from curator.contract.data import Filters
from curator.contract.flags import FLAGS_COLUMN, FlagMatrix, flags_from_arrow, flags_from_lists, row_flags

SECONDS_PER_HOUR = 3600.0
LIST_FILTERS = (("language", "languages"), ("sr", "sample_rates"), ("distortion", "distortions"))
"""(column, ``data.filters`` field) of the membership filters."""
FLAG_FILTER = (FLAGS_COLUMN, "augmentations")
"""(column, ``data.filters`` field) of the flag filter: the column is a :class:`FlagMatrix`."""
BASE_COLUMNS = ("utt_id", "duration_sec", "language", "sr", "distortion")
"""Columns every filter call needs; :func:`filter_columns` adds the flags when the flag filter is used."""


class FilterError(ConfigError):
    """A ``data.filters`` value no row of the pool has; the message names it and the valid choices."""


def _sorted(values: list[Any]) -> list[Any]:
    """Numbers in numeric order, anything else by its text."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def filter_columns(filters: Filters) -> tuple[str, ...]:
    """The columns :func:`filter_mask` reads for ``filters`` (the flags only when ``augmentations`` is set)."""
    return (*BASE_COLUMNS, FLAGS_COLUMN) if filters.augmentations else BASE_COLUMNS


def check_filter_values(columns: Mapping[str, Any], filters: Filters, where: str) -> None:
    """Raise :class:`FilterError` when a list filter names a value no row of ``columns`` has.

    ``where`` names the pool in the message (a manifest or scores file). Every unknown value of every filter
    is named at once, each with a did-you-mean among the pool's values.
    """
    problems = []
    for column, name in (*LIST_FILTERS, FLAG_FILTER):
        wanted = list(getattr(filters, name))
        if not wanted:
            continue
        if column == FLAGS_COLUMN:
            flags = columns[column]
            present = list(flags.names) if isinstance(flags, FlagMatrix) else []
        else:
            present = _sorted(pd.unique(pd.Series(columns[column], dtype=object).dropna()).tolist())
        known = {str(v) for v in present}
        unknown = [v for v in wanted if str(v) not in known]
        if not unknown:
            continue
        hints = []
        for v in unknown:
            close = difflib.get_close_matches(str(v), sorted(known), n=1, cutoff=0.5)
            hints.append(repr(v) + (f" (did you mean {close[0]!r}?)" if close else ""))
        shown = ", ".join(map(str, present)) or "none"
        problems.append(f"data.filters.{name} lists {', '.join(hints)}, which no row of {where} has; "
                        f"valid choices: {shown}")
    if problems:
        raise FilterError("; ".join(problems) + " (fix or remove the value(s); [] keeps all)")


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


def filter_mask(columns: Mapping[str, Any], filters: Filters, seed: int, keep: np.ndarray | None = None,
                where: str = "the pool") -> tuple[np.ndarray, dict[str, int]]:
    """Rows that pass ``filters`` (among ``keep`` when given) and how many rows each filter removed.

    ``columns`` maps ``utt_id, duration_sec, language, sr, distortion`` to equally long arrays, plus
    ``augmentations`` to a :class:`FlagMatrix` when the flag filter is used. Empty lists mean "all"; a listed
    value no row has is a :class:`FilterError` (``where`` names the pool). ``max_hours`` keeps the seeded
    subset of :func:`max_hours_mask` among the rows still kept.
    """
    check_filter_values(columns, filters, where)
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
    if filters.augmentations:
        inside = columns[FLAGS_COLUMN].any_of(filters.augmentations)
        removed = int((mask & ~inside).sum())
        if removed:
            dropped[FLAGS_COLUMN] = removed
        mask &= inside
    if filters.max_hours is not None:
        rows = np.flatnonzero(mask)
        inside = max_hours_mask(np.asarray(columns["utt_id"], dtype=object)[rows],
                                np.asarray(columns["duration_sec"], dtype=np.float64)[rows], filters.max_hours, seed)
        if (~inside).any():
            dropped["max_hours"] = int((~inside).sum())
        mask[rows[~inside]] = False
    return mask, dropped


def arrow_columns(table: Any, filters: Filters, where: str) -> dict[str, Any]:
    """The :func:`filter_mask` columns of a scores Arrow table (the flag matrix built vectorised)."""
    names = filter_columns(filters)
    if FLAGS_COLUMN in names and FLAGS_COLUMN not in table.column_names:
        raise FilterError(f"data.filters.augmentations needs the '{FLAGS_COLUMN}' column, which {where} lacks "
                          "(scored before per-augmentation flags existed): re-run the score stage (dvc repro score)")
    out: dict[str, Any] = {c: table[c].to_numpy(zero_copy_only=False) for c in names if c != FLAGS_COLUMN}
    if FLAGS_COLUMN in names:
        out[FLAGS_COLUMN] = flags_from_arrow(table[FLAGS_COLUMN])
    return out


def manifest_flags(df: pd.DataFrame) -> FlagMatrix:
    """The per-augmentation flags of manifest rows (:func:`contract.flags.row_flags` of each row)."""
    def col(name: str) -> list[Any]:
        return df[name].tolist() if name in df.columns else [None] * len(df)

    return flags_from_lists([row_flags(a if isinstance(a, list | tuple) else None, d, nz, r) for a, d, nz, r in
                             zip(col("augmentations"), col("distortion"), col("noise_id"), col("rir_id"), strict=True)])


def apply_filters(df: pd.DataFrame, filters: Filters, seed: int = 0,
                  where: str = "the manifest") -> tuple[pd.DataFrame, dict[str, int]]:
    """:func:`filter_mask` on a manifest DataFrame: the kept rows sorted by utt_id, and the removed counts."""
    columns: dict[str, Any] = {c: df[c].to_numpy() for c in BASE_COLUMNS}
    if filters.augmentations:
        columns[FLAGS_COLUMN] = manifest_flags(df)
    mask, dropped = filter_mask(columns, filters, seed, where=where)
    return df[mask].sort_values("utt_id", kind="stable").reset_index(drop=True), dropped

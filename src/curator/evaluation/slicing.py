"""The rows of each slice of a per-utterance table, for every per-slice report (eval, compare, efficacy).

A slice column such as ``distortion``, ``sr`` or ``language`` splits the rows by its value (numeric values in
numeric order; a missing value is its own slice, ``nan``). The per-augmentation flags column
(``augmentations``: a row's flags joined by ``+``, as in the curated CSV; ``contract/flags.py``) is different:
a row has several flags, so each flag is a slice of the rows that carry it, whatever else was applied, and the
slices overlap (a reverberant, clipped row counts in ``reverb`` and in ``clipping``). The primary
``distortion`` label names one kind per row and so hides, e.g., the reverberation under a codec row; the flag
slices answer "how does the model do on every row with reverberation".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from curator.contract.flags import FLAG_SEPARATOR, FLAGS_COLUMN, flags_from_lists, row_flags


def flag_strings(rows: pd.DataFrame) -> list[str]:
    """Each manifest row's flags joined by ``+`` (``contract.flags.row_flags``; ``''`` for a row without any)."""
    def col(name: str) -> list[Any]:
        return rows[name].tolist() if name in rows.columns else [None] * len(rows)

    return [FLAG_SEPARATOR.join(row_flags(a if isinstance(a, list | tuple | np.ndarray) else None, d, n, r))
            for a, d, n, r in zip(col("augmentations"), col("distortion"), col("noise_id"), col("rir_id"),
                                  strict=True)]


def slice_masks(df: pd.DataFrame, key: str) -> Iterator[tuple[str, np.ndarray]]:
    """``(value, rows)`` for each slice of column ``key`` in a stable order (see the module docstring)."""
    if key == FLAGS_COLUMN:
        joined = df[key].fillna("").astype(str).tolist()
        flags = flags_from_lists([[f for f in s.split(FLAG_SEPARATOR) if f] for s in joined])
        for name in flags.names:
            yield name, flags.has(name)
        return
    codes, uniques = pd.factorize(df[key], sort=True, use_na_sentinel=False)
    for code, value in enumerate(uniques):
        yield str(value), codes == code


def present(df: pd.DataFrame, keys: Sequence[str] | Iterable[str]) -> list[str]:
    """The slice columns of ``keys`` that ``df`` has (a per-utterance file written before a column existed
    simply lacks that slice)."""
    return [k for k in keys if k in df.columns]

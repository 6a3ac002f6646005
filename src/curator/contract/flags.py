"""Per-augmentation flags: every kind of distortion applied to a row, beside its one primary ``distortion`` label.

The primary label (``datasets/labels.py``) names one kind per row: ``reverb`` only when nothing else was
applied, although the official simulation reverberates about half of all rows under other augmentations. The
flags name them all, in the same vocabulary (``noise, reverb, wind, bandwidth_limitation, clipping, codec,
packet_loss, speech_free``), so "hours with reverberation, whatever else was applied" is a flag, and a row's
primary label is always one of its flags. They are derived from a manifest row:

- its primary ``distortion`` label;
- each ``augmentations`` string by kind (``clipping(min=..)`` -> ``clipping``, ``wind_noise(..)`` -> ``wind``;
  a no-op ``bandwidth_limitation-none->16000`` is none); a string of another tool counts by its leading name
  (``babble(snr=3)`` -> ``babble``), so flags of another vocabulary are kept, not dropped;
- ``rir_id`` -> ``reverb``; ``noise_id`` -> ``wind`` for wind noise, else ``noise``.

The scores table carries them as the list column ``augmentations`` (sorted flag names; the manifest's own
``augmentations`` holds the raw strings), the curated CSV as one string joined by ``+``. ``data.filters
.augmentations`` and ``select.quotas.augmentations`` read them as a boolean matrix (:class:`FlagMatrix`), built
from the Arrow list column without a Python loop over rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FLAGS_COLUMN = "augmentations"
"""Scores / curated column of the flags (and the ``data.filters`` / ``select.quotas`` key that reads them)."""
FLAGS_TYPE = pa.list_(pa.string())
FLAG_SEPARATOR = "+"
"""Joins a row's flags in the curated CSV (``clipping+noise+reverb``)."""
FLAG_NAMES = ("noise", "reverb", "wind", "bandwidth_limitation", "clipping", "codec", "packet_loss", "speech_free")
"""The flags of the official simulation: the primary-label vocabulary (``datasets.labels.DISTORTIONS``; this
package imports no stage package, a test keeps the two in step)."""
WIND_PREFIX = "wind_noise"
"""Official wind-noise ids and augmentation strings start with this."""
_KIND_PREFIX = (("bandwidth_limitation", "bandwidth_limitation"), ("clipping", "clipping"), ("codec", "codec"),
                ("packet_loss", "packet_loss"), (WIND_PREFIX, "wind"))
"""Official augmentation string prefix -> flag (``datasets.labels.augmentation_kind``)."""
_NOOP_BANDWIDTH = re.compile(r"bandwidth_limitation-none->\d+")
"""A bandwidth limitation to the signal's own rate: nothing was done (as in ``labels.primary_distortion``)."""
_LEADING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def augmentation_flag(aug: str) -> str | None:
    """The flag of one manifest ``augmentations`` string (None for a no-op or a string with no name)."""
    aug = aug.strip()
    if not aug or _NOOP_BANDWIDTH.fullmatch(aug):
        return None
    if aug in FLAG_NAMES:
        return aug
    for prefix, kind in _KIND_PREFIX:
        if aug.startswith(prefix):
            return kind
    m = _LEADING_NAME.match(aug)
    return m.group(0).lower() if m else None


def row_flags(augmentations: Iterable[str] | None, distortion: str | None, noise_id: str | None,
              rir_id: str | None) -> list[str]:
    """Sorted flags of one manifest row (see the module docstring); idempotent on a list of flags."""
    distortion, noise_id, rir_id = (None if isinstance(v, float) and v != v else v  # NaN (pandas) = missing
                                    for v in (distortion, noise_id, rir_id))
    flags = {distortion} if distortion else set()
    for aug in augmentations or ():
        flag = augmentation_flag(str(aug))
        if flag:
            flags.add(flag)
    if rir_id:
        flags.add("reverb")
    if noise_id:
        flags.add("wind" if str(noise_id).startswith(WIND_PREFIX) else "noise")
    return sorted(flags)


@dataclass
class FlagMatrix:
    """Rows x flags booleans: ``matrix[i, j]`` is True when row ``i`` has flag ``names[j]`` (names sorted)."""

    names: list[str]
    matrix: np.ndarray

    def has(self, name: str) -> np.ndarray:
        """Rows with flag ``name`` (all False when no row has it)."""
        if name not in self.names:
            return np.zeros(self.matrix.shape[0], dtype=bool)
        return self.matrix[:, self.names.index(name)].copy()

    def any_of(self, names: Iterable[str]) -> np.ndarray:
        """Rows with at least one of ``names``."""
        cols = [self.names.index(n) for n in names if n in self.names]
        if not cols:
            return np.zeros(self.matrix.shape[0], dtype=bool)
        return self.matrix[:, cols].any(axis=1)

    def take(self, rows: np.ndarray) -> FlagMatrix:
        return FlagMatrix(self.names, self.matrix[rows])


def flags_from_lists(lists: Sequence[Sequence[str] | None]) -> FlagMatrix:
    """A :class:`FlagMatrix` from per-row flag lists (None = no flags)."""
    return flags_from_arrow(pa.array([list(v) if v is not None else None for v in lists], type=FLAGS_TYPE))


def flags_from_arrow(column: pa.Array | pa.ChunkedArray) -> FlagMatrix:
    """A :class:`FlagMatrix` from a list<string> column, vectorised (flatten, dictionary-encode, scatter)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=FLAGS_TYPE)
    n = len(column)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise TypeError(f"'{FLAGS_COLUMN}' must be a list of strings, got {column.type}")
    parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(column)
    ok = pc.invert(pc.is_null(values)).to_numpy(zero_copy_only=False)
    if len(values) and not ok.all():
        values, parents = values.filter(pa.array(ok)), parents[ok]
    enc = pc.cast(values, pa.string()).dictionary_encode()
    dictionary = [str(v) for v in enc.dictionary.to_pylist()]
    order = np.argsort(np.asarray(dictionary, dtype=object), kind="stable") if dictionary else np.zeros(0, int)
    remap = np.empty(len(dictionary), dtype=np.int64)
    remap[order] = np.arange(len(dictionary))
    matrix = np.zeros((n, len(dictionary)), dtype=bool)
    if len(values):
        matrix[parents, remap[enc.indices.to_numpy(zero_copy_only=False)]] = True
    return FlagMatrix([dictionary[i] for i in order], matrix)


def join_flags(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The list column as one ``+``-joined string per row (the curated CSV's form; null lists -> '')."""
    return pc.fill_null(pc.binary_join(column, FLAG_SEPARATOR), "")

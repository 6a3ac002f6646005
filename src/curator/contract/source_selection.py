"""The selected-sources list: a CSV, one SELECTED source recording a row, and its ``<stem>_meta.json`` sidecar.

The source_select stage writes it (``<root>/curated/source_selection/selected_sources.csv``); the simulation from
the selection reads it. Columns: :data:`LEADING` (what selection adds), then the carried labels and scores of
:data:`CARRIED` (empty where a source has none, e.g. no ``mos_dns`` on a noise clip). Speech rows are the ones
chosen under the hours budget, in selection order (``order`` 0, 1, ...); noise, wind-noise and RIR rows follow
(every source of those kinds that passed its filters), in manifest order. ``(kind, source_id)`` is the key, as
in the source manifest (``contract/sources.py``).

The sidecar records the schema version, the config and the sha256 of every input; a CSV without its sidecar, or
with a sidecar of another schema version, is an error naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from curator.contract.versions import ContractError, check_version
from curator.io import atomic_open, write_json

SCHEMA_VERSION = 1
VERSION_KEY = "schema_version"
RERUN = "the source_select stage (dvc repro source_select)"
LEADING = ("kind", "source_id", "hours", "reason", "order", "slice", "in_quota")
"""``hours`` of the source, why it was kept (the strategy's reason, ``list``, or ``kept`` / ``unscored`` for
noise, wind and RIR rows), selection ``order``, the speech row's quota ``slice`` and whether it counted within
its slice's quota (empty for the other kinds)."""
CARRIED = ("corpus", "speaker", "language", "sr", "path", "duration_sec", "band", "ref_quality", "mos_dns",
           "ref_bandwidth_hz", "hardness")
"""Labels (from the source manifest) and scores (from the source scores) copied into every row: the
effective-bandwidth ``band`` (``source_select.bandwidth_edges_hz``) and the ``hardness`` cvar ranked by."""
COLUMNS = (*LEADING, *CARRIED)
KEY = ("kind", "source_id")
CSV_FLOAT_FORMAT = "%.9g"
_DTYPES = {"kind": str, "source_id": str, "reason": str, "slice": str, "corpus": str, "speaker": str,
           "language": str, "path": str, "band": str}


def meta_path(csv_path: str | os.PathLike[str]) -> Path:
    """``<dir>/<stem>_meta.json`` beside the CSV."""
    p = Path(csv_path)
    return p.with_name(f"{p.stem}_meta.json")


def write_selection(path: str | os.PathLike[str], frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write the CSV (columns :data:`COLUMNS`, in that order) and its sidecar (``meta`` + the schema version),
    both atomically. Missing carried columns are written empty; a repeated ``(kind, source_id)`` is an error."""
    missing = [c for c in LEADING if c not in frame.columns]
    if missing:
        raise ContractError(f"selected sources for '{path}' lack column(s) {', '.join(missing)}")
    dup = frame.duplicated(list(KEY))
    if dup.any():
        row = frame[dup].iloc[0]
        raise ContractError(f"selected sources for '{path}' repeat {row['kind']} source '{row['source_id']}'")
    out = frame.reindex(columns=list(COLUMNS))
    with atomic_open(path, newline="") as f:
        out.to_csv(f, index=False, float_format=CSV_FLOAT_FORMAT)
    write_json(meta_path(path), {**meta, VERSION_KEY: SCHEMA_VERSION})


def read_meta(csv_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The version-checked sidecar of a selected-sources CSV (an error when it is missing)."""
    path = meta_path(csv_path)
    if not path.is_file():
        raise ContractError(f"selected-sources list '{csv_path}' has no sidecar '{path}'; rerun {RERUN}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"selected-sources sidecar '{path}' is not valid JSON ({exc}); rerun {RERUN}") from exc
    version = meta.get(VERSION_KEY) if isinstance(meta, dict) else None
    check_version("selected-sources sidecar", str(path), version if isinstance(version, int) else None,
                  SCHEMA_VERSION, RERUN)
    return meta


def read_selection(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The selected sources (sidecar version checked first), ids and labels as strings, in file order."""
    if not os.path.isfile(path):
        raise ContractError(f"selected-sources list '{path}' does not exist; run {RERUN}")
    read_meta(path)
    df = pd.read_csv(path, dtype=_DTYPES, keep_default_na=False, na_values={c: [""] for c in COLUMNS
                                                                           if c not in _DTYPES})
    missing = [c for c in LEADING if c not in df.columns]
    if missing:
        raise ContractError(f"selected-sources list '{path}' lacks column(s) {', '.join(missing)}; rerun {RERUN}")
    if df.duplicated(list(KEY)).any():
        row = df[df.duplicated(list(KEY))].iloc[0]
        raise ContractError(f"selected-sources list '{path}' repeats {row['kind']} source '{row['source_id']}'")
    return df

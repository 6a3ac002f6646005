"""The source scores table (Parquet): one row per source recording, written by the source_score stage.

Key ``(kind, source_id)`` as in the source manifest (``contract/sources.py``); rows sorted by kind (in
:data:`~curator.contract.sources.KINDS` order) then ``source_id``. Label columns (:data:`LABELS`) come from the
manifest, except ``duration_sec`` (the decoded length where the file decodes) and ``status`` (``ok`` or why the
recording was not scored: unreadable, nan, sr_mismatch, too_short, silent). Score columns by kind (NaN on
other kinds' rows and on rows whose status is not ``ok``):

- speech: the pair scorer's reference columns under the same names (``ref_dnsmos_sig/bak/ovrl``, ``mos_dns``,
  ``ref_bandwidth_hz``, ``ref_bandwidth_ratio``, ``ref_speech_ratio``, ``ref_clip_ratio``, composite
  ``ref_quality``, optional ``ref_distillmos`` / ``mos_nisqa``) and ``ssl_embed`` (null elsewhere);
- noise and wind_noise: ``noise_level_dbfs`` (active RMS), ``noise_bandwidth_hz``, ``noise_speech_ratio``
  (Silero VAD share), ``noise_clip_ratio`` and boolean ``noise_has_speech`` (speech ratio above
  ``source_score.noise.max_speech_ratio``: a defect; null where not scored);
- rir: ``rir_rt60_sec`` (Schroeder energy-decay T20 fit) and ``rir_drr_db`` (direct-to-reverberant ratio).

A kind's score columns are present when the manifest has rows of that kind and its scorers are configured
(``source_score.<group>.scorers``). The metadata holds the schema version and every setting the numbers depend on.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curator.contract.versions import check_version
from curator.io import atomic_path

SCHEMA_VERSION = 1
RERUN = "the source_score stage (dvc repro source_score)"
METADATA_SCHEMA_KEY = b"curator.source_scores.schema_version"
METADATA_SETTINGS_KEY = b"curator.source_scores.settings"

LABELS: dict[str, pa.DataType] = {
    "source_id": pa.string(),
    "kind": pa.string(),
    "status": pa.string(),
    "path": pa.string(),
    "sr": pa.int64(),
    "duration_sec": pa.float64(),
    "corpus": pa.string(),
    "speaker": pa.string(),
    "language": pa.string(),
}
"""The key, status and manifest labels every row carries (selection never goes back to the manifest)."""
NOISE_HAS_SPEECH_COLUMN = "noise_has_speech"
NOISE_SPEECH_RATIO_COLUMN = "noise_speech_ratio"


def write_source_scores(table: pa.Table, path: str | os.PathLike[str], settings: dict[str, Any] | None = None) -> None:
    """Write ``table`` atomically with the schema version (and ``settings``) in its metadata; same inputs, same bytes."""
    meta = {METADATA_SCHEMA_KEY: str(SCHEMA_VERSION).encode()}
    if settings is not None:
        meta[METADATA_SETTINGS_KEY] = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    table = table.combine_chunks().replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def schema_version(schema: pa.Schema) -> int | None:
    raw = (schema.metadata or {}).get(METADATA_SCHEMA_KEY)
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def read_source_scores(path: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """Read ``columns`` (all when None) of a source scores file after checking its schema version."""
    check_version("source scores file", str(path), schema_version(pq.read_schema(path)), SCHEMA_VERSION, RERUN)
    return pq.read_table(path, columns=columns)


def read_source_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings stored in a source scores file's metadata (with its schema version)."""
    meta = pq.read_schema(path).metadata or {}
    return {"schema_version": schema_version(pq.read_schema(path)),
            **json.loads(meta.get(METADATA_SETTINGS_KEY, b"{}"))}

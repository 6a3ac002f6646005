"""The scores table: Arrow schema of the carried manifest columns, deterministic Parquet writing."""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curator.io import atomic_path

SCHEMA_VERSION = 1
METADATA_SCHEMA_KEY = b"curator.scores.schema_version"
METADATA_SETTINGS_KEY = b"curator.scores.settings"

CARRIED: dict[str, pa.DataType] = {
    "utt_id": pa.string(),
    "path": pa.string(),
    "clean_path": pa.string(),
    "duration_sec": pa.float64(),
    "sr": pa.int64(),
    "language": pa.string(),
    "distortion": pa.string(),
    "speaker": pa.string(),
    "split": pa.string(),
}
"""Manifest columns copied into every scores row (selection and training join on them)."""

FLOAT_DECIMALS = 6
"""Scores are rounded to this many decimals: far below any proxy's meaning, far above the ~1e-13 run-to-run
jitter of SIMD reductions inside reference implementations (pystoi), so reruns give identical bytes."""

STATUS_COLUMN = "status"
SPEECH_FREE_COLUMN = "speech_free"
"""True where the target is silent (a noise-only example): intrusive proxies are NaN there."""
LOSS_PROXY_COLUMN = "loss_proxy"
REF_QUALITY_COLUMN = "ref_quality"
EMBED_COLUMN = "ssl_embed"


def write_table(table: pa.Table, path: str | os.PathLike[str], settings: dict[str, Any] | None = None) -> None:
    """Write ``table`` atomically as Parquet with the schema version (and ``settings``) in its metadata.

    No pandas metadata, no timestamps, no absolute paths: identical inputs give identical bytes.
    """
    meta = {METADATA_SCHEMA_KEY: str(SCHEMA_VERSION).encode()}
    if settings is not None:
        meta[METADATA_SETTINGS_KEY] = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    table = table.combine_chunks().replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def read_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The scorer settings stored in a scores file's metadata (with its schema version)."""
    meta = pq.read_schema(path).metadata or {}
    settings = json.loads(meta.get(METADATA_SETTINGS_KEY, b"{}"))
    return {"schema_version": int(meta.get(METADATA_SCHEMA_KEY, b"0")), **settings}

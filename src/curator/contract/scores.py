"""The scores table (Parquet): its columns, schema version, deterministic writing and checked lazy reads.

Required columns (the user's spec): ``utt_id, path, duration_sec, sr, language, distortion, loss_proxy,
ssl_embed``; every manifest column of :data:`CARRIED` is copied in, the source ids included, so selection
and training never go back to the manifest for a label (the manifest's raw ``augmentations`` strings arrive as
per-augmentation flags).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curator.contract.flags import FLAGS_COLUMN, FLAGS_TYPE, row_flags
from curator.contract.versions import check_version
from curator.io import atomic_path

SCHEMA_VERSION = 2
"""Version 2 carries the source ids (``speech_uid``, ``noise_id``, ``rir_id``) and corpus (``source``)."""
RERUN = "the score stage (dvc repro score)"
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
    "speech_uid": pa.string(),
    "noise_id": pa.string(),
    "rir_id": pa.string(),
    "source": pa.string(),
    FLAGS_COLUMN: FLAGS_TYPE,
}
"""Manifest columns copied into every scores row (selection and training join on them). ``augmentations``
holds the row's per-augmentation flags (``contract/flags.py``: ``row_flags``), not the manifest's raw strings."""


def carried_row(row: dict[str, Any]) -> dict[str, Any]:
    """The :data:`CARRIED` fields of a manifest row, its raw ``augmentations`` strings turned into flags."""
    out = {k: row.get(k) for k in CARRIED}
    augs = row.get(FLAGS_COLUMN)
    out[FLAGS_COLUMN] = row_flags(augs if isinstance(augs, list | tuple) else None, row.get("distortion"),
                                  row.get("noise_id"), row.get("rir_id"))
    return out


FLOAT_DECIMALS = 6
"""Scores are rounded to this many decimals: far below any proxy's meaning, far above the ~1e-13 run-to-run
jitter of SIMD reductions inside reference implementations (pystoi), so reruns give identical bytes."""

STATUS_COLUMN = "status"
STATUS_OK = "ok"
"""``status`` of a row every scorer could score; any other value names why not (decode_error, nan, ...)."""
MOS_COLUMN = "mos_dns"
SPEECH_FREE_COLUMN = "speech_free"
"""True where the target is silent (a noise-only example): intrusive proxies are NaN there."""
LOSS_PROXY_COLUMN = "loss_proxy"
REF_QUALITY_COLUMN = "ref_quality"
EMBED_COLUMN = "ssl_embed"
PROBE_HOLDOUT_COLUMN = "probe_holdout_loss"
"""The probe stage's held-out loss: a probe that never saw the row (RHO-LOSS's irreducible-loss model)."""
PROBE_CURRENT_COLUMN = "probe_current_loss"
"""The probe stage's current-model loss (``probe.ranking: reducible_loss``): a probe trained on the row's fold."""
PROBE_REDUCIBLE_COLUMN = "probe_reducible_loss"
"""RHO-LOSS's reducible loss: ``probe_current_loss - probe_holdout_loss`` (``probe.ranking: reducible_loss``)."""
PROBE_COLUMNS = (PROBE_HOLDOUT_COLUMN, PROBE_REDUCIBLE_COLUMN)
"""Probe columns a ``score.loss_proxy`` weight may name; the score stage joins the weighted ones in."""
REQUIRED = ("utt_id", "path", "duration_sec", "sr", "language", "distortion", LOSS_PROXY_COLUMN, EMBED_COLUMN)
"""The spec's required scores columns."""


def write_table(table: pa.Table, path: str | os.PathLike[str], settings: dict[str, Any] | None = None,
                row_group_size: int | None = None) -> None:
    """Write ``table`` atomically as Parquet with the schema version (and ``settings``) in its metadata.

    No pandas metadata, no timestamps, no absolute paths: identical inputs give identical bytes.
    """
    meta = {METADATA_SCHEMA_KEY: str(SCHEMA_VERSION).encode()}
    if settings is not None:
        meta[METADATA_SETTINGS_KEY] = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    table = table.combine_chunks().replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True, row_group_size=row_group_size)


def read_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The scorer settings stored in a scores file's metadata (with its schema version)."""
    meta = pq.read_schema(path).metadata or {}
    settings = json.loads(meta.get(METADATA_SETTINGS_KEY, b"{}"))
    return {"schema_version": int(meta.get(METADATA_SCHEMA_KEY, b"0")), **settings}


def schema_version(schema: pa.Schema) -> int | None:
    """The schema version in a scores table's metadata; None when it has none."""
    raw = (schema.metadata or {}).get(METADATA_SCHEMA_KEY)
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def read_schema(path: str | os.PathLike[str]) -> pa.Schema:
    """A scores file's Arrow schema, after checking its schema version (reads no data)."""
    schema = pq.read_schema(path)
    check_version("scores file", str(path), schema_version(schema), SCHEMA_VERSION, RERUN)
    return schema


def read_scores(path: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """Read ``columns`` (all when None) of a version-checked scores file; only those columns are decoded."""
    read_schema(path)
    return pq.read_table(path, columns=columns)

"""The curated list: a CSV with at least ``utt_id`` (the user's spec) and its ``<stem>_meta.json`` sidecar.

The select stage writes the columns of :data:`LEADING` then the carried scores columns of :data:`CARRIED`
(labels, per-augmentation flags, source ids, corpus), and the sidecar records the schema version, the config
and the input hashes.
A CSV without a sidecar is a list made elsewhere (only ``utt_id`` is read); a sidecar of another schema
version is an error naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from curator.contract.flags import FLAGS_COLUMN
from curator.contract.scores import MOS_COLUMN
from curator.contract.versions import ContractError, check_version

SCHEMA_VERSION = 2
"""Version 2 added the schema version itself, the source ids and the corpus."""
VERSION_KEY = "schema_version"
RERUN = "the select stage (dvc repro select)"
LEADING = ("utt_id", "hours", "slice", "reason", "order", "in_quota")
"""What selection adds: hours, slice, why the row was picked, pick order, whether it counted for a quota."""
CARRIED = ("path", "clean_path", "language", "distortion", "sr", "speaker", "duration_sec", "loss_proxy",
           MOS_COLUMN, "speech_uid", "noise_id", "rir_id", "source", FLAGS_COLUMN)
"""Scores columns copied into the curated CSV when the scores table has them; ``augmentations`` is the row's
per-augmentation flags joined by ``+`` (``clipping+noise+reverb``, ``contract/flags.py``)."""


def meta_path(csv_path: str | os.PathLike[str]) -> Path:
    """``<dir>/<stem>_meta.json`` beside the curated CSV."""
    p = Path(csv_path)
    return p.with_name(f"{p.stem}_meta.json")


def read_meta(csv_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The version-checked sidecar of a curated CSV, or None when the list has no sidecar."""
    path = meta_path(csv_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"curated list sidecar '{path}' is not valid JSON ({exc}); rerun {RERUN}") from exc
    version = meta.get(VERSION_KEY) if isinstance(meta, dict) else None
    check_version("curated list sidecar", str(path), version if isinstance(version, int) else None,
                  SCHEMA_VERSION, RERUN)
    return meta

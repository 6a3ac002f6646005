"""The manifest: JSONL, one utterance a line, the contract between ``datasets`` and every later stage.

Required fields (the user's spec): ``utt_id, path, duration_sec, sr, language, distortion, split``.
Pair and provenance fields a curation needs: ``clean_path, augmentations, snr_db, speech_uid, noise_id,
rir_id, speaker, text, source``. ``path`` is the noisy input, ``clean_path`` its target (None where no target);
``speech_uid``, ``noise_id`` and ``rir_id`` name the source recordings the pair was simulated from and
``source`` its corpus.

Every row this code writes carries ``schema_version``; a row without one is the spec's base schema (a
manifest made by another tool) and is read as such, a row of another version is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from curator.contract.data import SPLITS
from curator.contract.versions import SchemaVersionError, check_version
from curator.io import atomic_open

SCHEMA_VERSION = 2
"""Version 2 added ``speech_uid`` and the per-row ``schema_version``."""
VERSION_FIELD = "schema_version"
SECONDS_PER_HOUR = 3600.0
NOT_AVAILABLE = "<not-available>"
"""The official placeholder of a missing transcript (official lists and ``meta.tsv``); a manifest's ``text`` is
None instead, and readers of either treat both as no transcript (the official CER script skips such rows)."""
REQUIRED = ("utt_id", "path", "duration_sec", "sr", "language", "distortion", "split")


class ManifestError(ValueError):
    """A manifest row is malformed; the message names the file and line."""


@dataclass
class Utterance:
    """One manifest row. Unknown extra keys are kept in ``custom`` (as Lhotse does)."""

    utt_id: str
    path: str
    duration_sec: float
    sr: int
    language: str
    distortion: str
    split: str
    clean_path: str | None = None
    augmentations: list[str] = field(default_factory=list)
    snr_db: float | None = None
    speech_uid: str | None = None
    noise_id: str | None = None
    rir_id: str | None = None
    speaker: str | None = None
    text: str | None = None
    source: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["custom"]:
            d.pop("custom")
        d[VERSION_FIELD] = SCHEMA_VERSION
        return d


FIELDS = tuple(f.name for f in dataclasses.fields(Utterance))
"""Row fields in schema order (``schema_version`` is written after them)."""
_TYPES: dict[str, tuple[type, ...]] = {
    "utt_id": (str,), "path": (str,), "duration_sec": (int, float), "sr": (int,), "language": (str,),
    "distortion": (str,), "split": (str,), "clean_path": (str, type(None)), "augmentations": (list,),
    "snr_db": (int, float, type(None)), "speech_uid": (str, type(None)), "rir_id": (str, type(None)),
    "noise_id": (str, type(None)),
    "speaker": (str, type(None)), "text": (str, type(None)), "source": (str, type(None)), "custom": (dict,),
}


def split_typed(row: dict[str, Any], types: dict[str, tuple[type, ...]], required: tuple[str, ...], where: str,
                error: type[Exception]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JSONL row's required fields present and its known fields of their types (bool is never a number);
    returns (known fields, extra fields). Shared by the pair manifest and the source manifest."""
    missing = [k for k in required if k not in row]
    if missing:
        raise error(f"{where}: missing field(s) {', '.join(missing)} (required: {', '.join(required)})")
    known = {k: v for k, v in row.items() if k in types}
    extra = {k: v for k, v in row.items() if k not in types}
    for key, value in known.items():
        if isinstance(value, bool) or not isinstance(value, types[key]):
            raise error(f"{where}: field '{key}' has type {type(value).__name__}, value {value!r}")
    return known, extra


def check_audio_fields(row: dict[str, Any], where: str, error: type[Exception]) -> float:
    """``duration_sec`` positive and finite, ``sr`` positive, ``split`` known; returns the duration as a float."""
    dur = float(row["duration_sec"])
    if not math.isfinite(dur) or dur <= 0:
        raise error(f"{where}: duration_sec must be a positive number, got {row['duration_sec']!r}")
    if row["sr"] <= 0:
        raise error(f"{where}: sr must be a positive integer, got {row['sr']!r}")
    if row["split"] not in SPLITS:
        raise error(f"{where}: split '{row['split']}' is not one of {', '.join(SPLITS)}")
    return dur


def iter_json_lines(path: str | os.PathLike[str], error: type[Exception]) -> Iterator[tuple[str, Any]]:
    """``(file:line, decoded JSON)`` for every non-blank line of a JSONL file, lazily."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{where}: not valid JSON ({exc.msg})") from exc


def validate_row(row: Any, where: str) -> Utterance:
    """Check one decoded row; ``where`` is ``file:line`` for the error message."""
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if VERSION_FIELD in row:
        version = row[VERSION_FIELD]
        if isinstance(version, bool) or not isinstance(version, int):
            raise ManifestError(f"{where}: field '{VERSION_FIELD}' must be an integer, got {version!r}")
        try:
            check_version("manifest row", where, version, SCHEMA_VERSION, "the manifest stage (dvc repro manifest)")
        except SchemaVersionError as exc:
            raise ManifestError(str(exc)) from exc
        row = {k: v for k, v in row.items() if k != VERSION_FIELD}
    known, extra = split_typed(row, _TYPES, REQUIRED, where, ManifestError)
    if not row["utt_id"]:
        raise ManifestError(f"{where}: empty utt_id")
    dur = check_audio_fields(row, where, ManifestError)
    utt = Utterance(**known)
    utt.duration_sec = dur
    if extra:
        utt.custom = {**utt.custom, **extra}
    return utt


def iter_manifest(path: str | os.PathLike[str]) -> Iterator[Utterance]:
    """Lazily read and validate a manifest, one row at a time (a million lines never sit in memory)."""
    seen: set[str] = set()
    for where, row in iter_json_lines(path, ManifestError):
        utt = validate_row(row, where)
        if utt.utt_id in seen:
            raise ManifestError(f"{where}: duplicate utt_id '{utt.utt_id}'")
        seen.add(utt.utt_id)
        yield utt


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a whole manifest into a DataFrame (validated), columns in schema order."""
    rows = [u.to_dict() for u in iter_manifest(path)]
    if not rows:
        return pd.DataFrame(columns=list(FIELDS[:-1]))
    df = pd.DataFrame.from_records(rows).drop(columns=VERSION_FIELD)
    return df[[c for c in FIELDS if c in df.columns]]


def write_manifest(path: str | os.PathLike[str], rows: Iterable[Utterance | dict[str, Any]]) -> int:
    """Validate and write rows atomically as JSONL; returns the number of rows."""
    n = 0
    seen: set[str] = set()
    with atomic_open(path) as f:
        for i, row in enumerate(rows, 1):
            utt = row if isinstance(row, Utterance) else validate_row(row, f"{path} (row {i})")
            if utt.utt_id in seen:
                raise ManifestError(f"{path} (row {i}): duplicate utt_id '{utt.utt_id}'")
            seen.add(utt.utt_id)
            f.write(json.dumps(utt.to_dict(), ensure_ascii=False, allow_nan=False) + "\n")
            n += 1
    return n


def resolve_path(p: str) -> Path:
    """Manifest paths are absolute, or relative to the repository root (the stages' working directory).

    Files inside the repository are written relative so that two clones produce byte-identical manifests.
    """
    path = Path(p)
    return path if path.is_absolute() else Path.cwd() / path

"""The source manifest: JSONL, one SOURCE recording a line (speech, noise, wind noise or a RIR).

Pair-level curation selects simulated noisy/clean pairs; source-level curation (``curation.level: sources``)
selects the recordings a simulation draws from, as the URGENT organisers chose their list of source speech.
The ``sources`` stage writes ``<root>/manifests/<dataset>/sources.jsonl`` (train sources only: dev and test stay
the fixed simulated pairs every variant is evaluated on); source scoring, source selection and the simulation
from the selection read it.

Fields: ``source_id`` (the list's uid), ``kind`` (one of :data:`KINDS`), ``path`` (absolute, or relative to the
repository root as manifest paths are), ``sr`` (the listed rate), ``duration_sec`` (from the header),
``corpus`` (the list the source came from, or a recipe's own label), ``speaker``, ``language`` (ISO 639-1,
``unknown`` where no list says), ``text``, ``split`` and ``custom`` (anything else, as Lhotse keeps it).
``source_id`` is unique within a kind (official noise and speech lists may share a uid); the pair
``(kind, source_id)`` is the key every later table uses.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from curator.contract.manifest import check_audio_fields, iter_json_lines, split_typed
from curator.contract.versions import ContractError, SchemaVersionError, check_version
from curator.io import atomic_open

SCHEMA_VERSION = 1
VERSION_FIELD = "schema_version"
KINDS = ("speech", "noise", "wind_noise", "rir")
"""Source kinds, in the order the official simulation lists them."""
SPEECH = "speech"
UNKNOWN = "unknown"
"""``language`` of a source no list labels."""
REQUIRED = ("source_id", "kind", "path", "sr", "duration_sec", "split")
RERUN = "the sources stage (dvc repro sources)"


class SourceManifestError(ContractError):
    """A source manifest row is malformed; the message names the file and line."""


@dataclass
class Source:
    """One source recording. Unknown extra keys are kept in ``custom``."""

    source_id: str
    kind: str
    path: str
    sr: int
    duration_sec: float
    split: str = "train"
    corpus: str | None = None
    speaker: str | None = None
    language: str = UNKNOWN
    text: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.source_id)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["custom"]:
            d.pop("custom")
        d[VERSION_FIELD] = SCHEMA_VERSION
        return d


FIELDS = tuple(f.name for f in dataclasses.fields(Source))
_TYPES: dict[str, tuple[type, ...]] = {
    "source_id": (str,), "kind": (str,), "path": (str,), "sr": (int,), "duration_sec": (int, float),
    "split": (str,), "corpus": (str, type(None)), "speaker": (str, type(None)), "language": (str,),
    "text": (str, type(None)), "custom": (dict,),
}


def validate_source(row: Any, where: str) -> Source:
    """Check one decoded row; ``where`` is ``file:line`` (or ``file (row N)``) for the error message."""
    if not isinstance(row, dict):
        raise SourceManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    version = row.get(VERSION_FIELD)
    if isinstance(version, bool) or not isinstance(version, (int, type(None))):
        raise SourceManifestError(f"{where}: field '{VERSION_FIELD}' must be an integer, got {version!r}")
    try:
        check_version("source manifest row", where, version, SCHEMA_VERSION, RERUN)
    except SchemaVersionError as exc:
        raise SourceManifestError(str(exc)) from exc
    row = {k: v for k, v in row.items() if k != VERSION_FIELD}
    known, extra = split_typed(row, _TYPES, REQUIRED, where, SourceManifestError)
    if not row["source_id"] or row["source_id"] != row["source_id"].strip() or any(c.isspace() for c in row["source_id"]):
        raise SourceManifestError(f"{where}: source_id {row['source_id']!r} is empty or has whitespace "
                                  "(official lists are whitespace-separated)")
    if row["kind"] not in KINDS:
        raise SourceManifestError(f"{where}: kind '{row['kind']}' is not one of {', '.join(KINDS)}")
    dur = check_audio_fields(row, where, SourceManifestError)
    src = Source(**known)
    src.duration_sec = dur
    if extra:
        src.custom = {**src.custom, **extra}
    return src


def iter_sources(path: str | os.PathLike[str]) -> Iterator[Source]:
    """Lazily read and validate a source manifest; a repeated ``(kind, source_id)`` is an error."""
    seen: set[tuple[str, str]] = set()
    for where, row in iter_json_lines(path, SourceManifestError):
        src = validate_source(row, where)
        if src.key in seen:
            raise SourceManifestError(f"{where}: duplicate {src.kind} source_id '{src.source_id}'")
        seen.add(src.key)
        yield src


def read_sources(path: str | os.PathLike[str], kinds: Iterable[str] | None = None) -> pd.DataFrame:
    """A whole source manifest as a DataFrame (validated), columns in schema order; ``kinds`` keeps only those."""
    want = set(KINDS if kinds is None else kinds)
    bad = want - set(KINDS)
    if bad:
        raise ValueError(f"unknown source kind(s) {sorted(bad)}; valid: {', '.join(KINDS)}")
    rows = [s.to_dict() for s in iter_sources(path) if s.kind in want]
    if not rows:
        return pd.DataFrame(columns=list(FIELDS))
    df = pd.DataFrame.from_records(rows).drop(columns=VERSION_FIELD)
    if "custom" not in df.columns:
        df["custom"] = [{} for _ in range(len(df))]
    df["custom"] = [c if isinstance(c, dict) else {} for c in df["custom"]]
    return df[list(FIELDS)]


def write_sources(path: str | os.PathLike[str], rows: Iterable[Source | dict[str, Any]]) -> dict[str, int]:
    """Validate (Source objects too) and write rows atomically as JSONL, sorted by (kind order, source_id) so two
    runs give the same bytes; returns rows per kind."""
    out: list[Source] = []
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows, 1):
        src = validate_source(row.to_dict() if isinstance(row, Source) else row, f"{path} (row {i})")
        if src.key in seen:
            raise SourceManifestError(f"{path} (row {i}): duplicate {src.kind} source_id '{src.source_id}'")
        seen.add(src.key)
        out.append(src)
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda s: (order[s.kind], s.source_id))
    counts = {k: 0 for k in KINDS}
    with atomic_open(path) as f:
        for src in out:
            f.write(json.dumps(src.to_dict(), ensure_ascii=False, allow_nan=False) + "\n")
            counts[src.kind] += 1
    return counts

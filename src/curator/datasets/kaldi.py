"""Read and write the official URGENT / Kaldi-style lists: ``uid value`` tables, ``uid fs path`` source
lists and the simulation log ``meta.tsv``.

Every reader names the file and line of a malformed entry, so a broken list fails with a message the user
can act on instead of a KeyError half-way through an import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from curator.io import atomic_open

META_COLUMNS = ("id", "noisy_path", "speech_uid", "speech_sid", "clean_path", "noise_uid", "snr_dB", "rir_uid",
                "augmentation", "fs", "length", "text")
"""Columns of the official ``meta.tsv`` (``noise_path`` may follow ``noise_uid`` when noise is stored)."""

NONE = "none"
"""The official placeholder of an absent RIR / augmentation (and, here, of the speech of speech-free rows)."""


class ListError(ValueError):
    """A list file is missing, malformed or inconsistent; the message names the file and line."""


@dataclass(frozen=True)
class SourceEntry:
    """One line of a ``uid fs path`` source list."""

    uid: str
    fs: int
    path: str


def read_table(path: str | os.PathLike[str], min_fields: int = 2, rest: bool = True) -> dict[str, list[str]]:
    """Read ``uid field ...`` lines into ``{uid: fields}``.

    With ``rest`` the last field takes the remainder of the line (transcripts contain spaces). Blank lines
    are skipped; short lines and duplicate ids raise :class:`ListError` naming ``file:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise ListError(f"list '{path}' does not exist")
    out: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split(maxsplit=min_fields - 1) if rest else line.split()
            if len(fields) < min_fields:
                raise ListError(f"{path}:{lineno}: expected {min_fields} columns (uid + {min_fields - 1}), "
                                f"got {len(fields)}: {line!r}")
            uid = fields[0]
            if uid in out:
                raise ListError(f"{path}:{lineno}: duplicate id '{uid}' (first on line {first_line[uid]})")
            first_line[uid] = lineno
            out[uid] = fields[1:]
    return out


def read_kv(path: str | os.PathLike[str]) -> dict[str, str]:
    """``uid value`` list (value may contain spaces) -> ``{uid: value}``."""
    return {uid: fields[0].strip() for uid, fields in read_table(path, 2, rest=True).items()}


def read_source_list(path: str | os.PathLike[str]) -> dict[str, SourceEntry]:
    """Official ``uid fs path`` list -> ``{uid: SourceEntry}`` (fs must be a positive integer)."""
    table = read_table(path, 3, rest=True)
    out = {}
    for lineno, (uid, (fs, p)) in enumerate(table.items(), 1):
        if not fs.isdigit() or int(fs) <= 0:
            raise ListError(f"{path}: entry '{uid}' (entry {lineno}): sampling rate {fs!r} is not a positive integer")
        out[uid] = SourceEntry(uid, int(fs), p.strip())
    return out


def read_source_lists(paths: Iterable[str | os.PathLike[str]]) -> dict[str, SourceEntry]:
    """Union of several source lists; an id listed twice raises :class:`ListError`."""
    out: dict[str, SourceEntry] = {}
    for p in paths:
        for uid, entry in read_source_list(p).items():
            if uid in out:
                raise ListError(f"{p}: id '{uid}' is also listed in another source list")
            out[uid] = entry
    return out


def write_kv(path: str | os.PathLike[str], items: Mapping[str, object]) -> None:
    """Write ``uid value`` lines sorted by uid (the official lists are ``sort -u -k1,1``)."""
    with atomic_open(path) as f:
        for uid in sorted(items):
            f.write(f"{uid} {items[uid]}\n")


def write_source_list(path: str | os.PathLike[str], entries: Iterable[SourceEntry]) -> None:
    """Official ``uid fs path`` list, sorted by uid."""
    write_kv(path, {e.uid: f"{e.fs} {e.path}" for e in entries})


def read_meta_tsv(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Official ``meta.tsv`` -> ``{id: row}``; missing columns, short rows and duplicate ids raise ListError."""
    path = Path(path)
    if not path.is_file():
        raise ListError(f"simulation log '{path}' does not exist")
    out: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        missing = [c for c in META_COLUMNS if c not in header]
        if missing:
            raise ListError(f"{path}:1: header lacks column(s) {', '.join(missing)} "
                            f"(expected {', '.join(META_COLUMNS)})")
        for lineno, line in enumerate(f, 2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            values = line.split("\t")
            if len(values) != len(header):
                raise ListError(f"{path}:{lineno}: {len(values)} tab-separated fields, header has {len(header)}")
            row = dict(zip(header, values, strict=True))
            if row["id"] in out:
                raise ListError(f"{path}:{lineno}: duplicate id '{row['id']}'")
            out[row["id"]] = row
    return out


def write_meta_tsv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, object]]) -> None:
    """Write rows in the official column order, in the given order (the simulation order)."""
    with atomic_open(path) as f:
        f.write("\t".join(META_COLUMNS) + "\n")
        for row in rows:
            f.write("\t".join(str(row[c]) for c in META_COLUMNS) + "\n")

"""Manifest path convention: files inside the repository are written relative to its root (the stages'
working directory), so two clones give byte-identical manifests; external data stays absolute."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def to_manifest_path(path: str | os.PathLike[str]) -> str:
    """Relative to the cwd when inside it, else absolute (POSIX separators).

    Purely lexical (no symlink resolution), so it stays cheap for millions of rows; the inverse is
    :func:`curator.manifest.resolve_path`.
    """
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return Path(os.path.relpath(absolute, cwd)).as_posix()
    return Path(absolute).as_posix()


def under(root: str | os.PathLike[str], path: str) -> Path:
    """``path`` if absolute, else ``root / path`` (official lists are relative to where they were made)."""
    p = Path(path)
    return p if p.is_absolute() else Path(root) / p


def resolve_many(entries: Sequence[str], root: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """List entries (absolute, or relative to ``root``) -> (absolute paths, manifest paths).

    String operations with the cwd looked up once: the batch form of :func:`under` plus
    :func:`to_manifest_path` for lists with millions of entries.
    """
    prefix = os.getcwd().rstrip(os.sep) + os.sep
    base = os.path.abspath(root)
    absolute = [os.path.normpath(e if os.path.isabs(e) else os.path.join(base, e)) for e in entries]
    rel = [a[len(prefix):] if a.startswith(prefix) else a for a in absolute]
    if os.sep != "/":
        rel = [r.replace(os.sep, "/") for r in rel]
    return absolute, rel

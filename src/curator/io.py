"""Atomic file writes, hashing and small JSON helpers shared by every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_HASH_CHUNK = 1 << 20


FILE_MODE = 0o666
"""Mode of a new file before the umask, as open() creates it."""


def current_umask() -> int:
    """The process umask (read by setting and restoring it: the only portable way)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    A killed or failing writer never leaves a half-written output that DVC or the next stage could mistake
    for a finished one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: give the output the mode any new file gets (umask)
            os.chmod(tmp_path, FILE_MODE & ~current_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that atomically becomes ``path`` on success."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as stable, sorted, indented JSON (identical bytes for identical content)."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def timings_path(metrics_path: str | os.PathLike[str]) -> Path:
    """Where a stage's wall-clock figures go: ``timings/<name>`` beside its metrics file. They differ on every run,
    so they are a plain output, not a DVC metric, and ``dvc exp show`` does not list every experiment as changed."""
    p = Path(metrics_path)
    return p.parent / "timings" / p.name


def executable(command: str, where: str) -> str:
    """The program a param names (an interpreter, a tool), as this process's working directory reads it: a bare
    name from ``PATH``, a path made absolute, so that a subprocess started in another folder runs the same program.
    Links are not followed (a virtualenv's ``bin/python`` links to an interpreter that would drop the virtualenv).
    Raises FileNotFoundError naming ``where`` when ``command`` names no executable file."""
    found = shutil.which(command)
    if found is None:
        raise FileNotFoundError(f"{where} = '{command}' is not an executable program (a name on PATH, or a path "
                                f"from {os.getcwd()})")
    return os.path.abspath(found)

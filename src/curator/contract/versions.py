"""Schema-version checks shared by every file of the contract."""

from __future__ import annotations


class ContractError(ValueError):
    """A file passed between stages cannot be read as its contract says; the message names the file."""


class SchemaVersionError(ContractError):
    """A file was written under another schema version than this code reads."""


def check_version(kind: str, where: str, found: int | None, expected: int, rerun: str) -> None:
    """Raise :class:`SchemaVersionError` unless ``found == expected``; the message says what to do.

    ``found`` is None when the file carries no version at all (written before versions existed).
    """
    if found == expected:
        return
    if found is None or found < expected:
        seen = "no schema version" if found is None else f"schema version {found}"
        raise SchemaVersionError(
            f"{kind} '{where}' has {seen}, but this code reads version {expected}: it was written by an older "
            f"urgent-curator; rerun {rerun} to rewrite it")
    raise SchemaVersionError(
        f"{kind} '{where}' has schema version {found}, newer than the version {expected} this code reads: "
        "update urgent-curator (git pull && make setup) or rerun " + rerun)

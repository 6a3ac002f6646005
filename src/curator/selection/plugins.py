"""Plug-in checks of the ``select`` section (called by :func:`curator.config.load_section`)."""

from __future__ import annotations

from curator.config import check_choice
from curator.selection.params import SelectParams
from curator.selection.registry import SELECTORS


def validate(params: SelectParams) -> SelectParams:
    """``select.name`` must be a registered strategy."""
    check_choice("select.name", params.name, SELECTORS.names())
    return params

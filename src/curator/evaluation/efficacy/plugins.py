"""Plug-in checks of the ``compare`` section (called by :func:`curator.config.load_section`)."""

from __future__ import annotations

from curator.config import check_choice
from curator.evaluation.efficacy.params import CompareParams
from curator.evaluation.metrics import METRICS


def validate(params: CompareParams) -> CompareParams:
    """Every headline metric must be a registered metric."""
    for m in params.headline_metrics:
        check_choice("compare.headline_metrics", m, METRICS.names())
    return params

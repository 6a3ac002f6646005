"""Plug-in checks of the ``eval`` section (called by :func:`curator.config.load_section`)."""

from __future__ import annotations

from curator.config import check_choice
from curator.evaluation.metrics import METRICS
from curator.evaluation.params import EvalParams


def validate(params: EvalParams) -> EvalParams:
    """Every ``eval.metrics``, ``eval.plot_metrics`` entry and ``eval.weights`` key must be a registered metric
    (plot metrics that are not evaluated are not drawn)."""
    for m in params.metrics:
        check_choice("eval.metrics", m, METRICS.names())
    for m in params.plot_metrics:
        check_choice("eval.plot_metrics", m, METRICS.names())
    for m in params.weights:
        check_choice("eval.weights", m, METRICS.names())
    return params

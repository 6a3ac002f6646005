"""Registry of evaluation metrics, each tagged with its official URGENT category.

A metric is a batched function ``(estimates, references, srs, pool) -> np.ndarray`` registered with
``@register_metric(name, category, ...)`` in one module of this package. ``references`` holds ``None`` for
utterances without a clean reference; intrusive metrics are only called on the rows that have one.
Non-intrusive metrics (e.g. DNSMOS, wrapped by ``curator.scoring``) register here the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from curator.registry import Registry

CATEGORIES = ("non_intrusive", "intrusive", "task_independent", "task_dependent")

MetricFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], np.ndarray, Executor | None], np.ndarray]


@dataclass(frozen=True)
class Metric:
    name: str
    category: str
    higher_is_better: bool
    needs_reference: bool
    fn: MetricFn


METRICS: Registry[Metric] = Registry("metric", package="curator.evaluation.metrics")


def register_metric(name: str, category: str, higher_is_better: bool = True,
                    needs_reference: bool = True) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering a batched metric function under ``name`` in URGENT ``category``."""
    if category not in CATEGORIES:
        raise ValueError(f"metric '{name}': category '{category}' is not one of {', '.join(CATEGORIES)}")

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.register(name)(Metric(name, category, higher_is_better, needs_reference, fn))
        return fn

    return deco


def map_utterances(fn: Callable[[np.ndarray, np.ndarray, int], float], estimates: Sequence[np.ndarray],
                   references: Sequence[np.ndarray], srs: np.ndarray, pool: Executor | None) -> np.ndarray:
    """Apply a per-utterance metric, across ``pool``'s processes when given."""
    mapper = pool.map if pool is not None else map
    return np.fromiter(mapper(fn, estimates, references, [int(s) for s in srs]), dtype=np.float64,
                       count=len(estimates))


def compute_metrics(metrics: Sequence[Metric], estimates: Sequence[np.ndarray],
                    references: Sequence[np.ndarray | None], srs: np.ndarray,
                    pool: Executor | None) -> dict[str, np.ndarray]:
    """Every metric for every utterance; NaN where a reference-needing metric has no reference."""
    has_ref = np.array([r is not None for r in references], dtype=bool)
    ref_idx = np.flatnonzero(has_ref)
    out: dict[str, np.ndarray] = {}
    for m in metrics:
        values = np.full(len(estimates), np.nan)
        idx = ref_idx if m.needs_reference else np.arange(len(estimates))
        if len(idx):
            values[idx] = m.fn([estimates[i] for i in idx], [references[i] for i in idx], srs[idx], pool)
        out[m.name] = values
    return out

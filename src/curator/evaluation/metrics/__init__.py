"""Registry of evaluation metrics, each tagged with its official URGENT category.

A metric is a batched function ``(estimates, references, srs, pool, options) -> np.ndarray`` registered with
``@register_metric(name, category, ...)`` in one module of this package. ``references`` holds ``None`` for
utterances without a clean reference; intrusive metrics are only called on the rows that have one. A metric
that declares ``sample_rate`` receives its inputs already resampled to that rate (``None``: native rate).

Model-based metrics read their weights' local paths and the device from :class:`MetricOptions`. A metric whose
package or weights are missing is *unavailable*: :func:`check_available` names the reason without loading
anything, and a loader that finds the weights missing raises :class:`MetricUnavailable`, so an evaluation can
record the reason and carry on with the other metrics (:func:`split_available`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curator.audio import resample
from curator.registry import Registry

CATEGORIES = ("non_intrusive", "intrusive", "task_independent", "task_dependent")
DEVICES = ("cpu", "cuda")


class MetricUnavailable(RuntimeError):
    """A metric cannot run here (package or weights missing); ``reason`` says what is missing and where to put it."""

    def __init__(self, metric: str, reason: str) -> None:
        super().__init__(f"metric '{metric}' is unavailable: {reason}")
        self.metric = metric
        self.reason = reason


@dataclass(frozen=True)
class MetricOptions:
    """Run-time settings of model-based metrics.

    ``weights`` maps a metric name to the local file or folder of its weights (a param of the eval stage);
    ``batch_size`` is how many utterances one forward pass takes on the GPU (CPU runs one at a time).
    """

    device: str = "cpu"
    batch_size: int = 8
    weights: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"metric device '{self.device}' is not one of {', '.join(DEVICES)}")
        if self.batch_size < 1:
            raise ValueError(f"metric batch_size must be >= 1, got {self.batch_size}")

    def weights_path(self, metric: str, what: str) -> Path:
        """The configured local path of ``metric``'s weights; :class:`MetricUnavailable` if unset or absent."""
        path = self.weights.get(metric)
        if not path:
            raise MetricUnavailable(metric, f"no weights configured: put {what} in a local folder and set "
                                            f"eval.weights.{metric} to its path")
        if not Path(path).exists():
            raise MetricUnavailable(metric, f"weights '{path}' not found: put {what} there")
        return Path(path)


DEFAULT_OPTIONS = MetricOptions()


@dataclass(frozen=True)
class MetricResources:
    """What a metric needs to run: a model (so a device matters) and which packages it imports."""

    model: str | None = None  # the weights it loads, in words; None for signal-processing metrics
    gpu_capable: bool = False  # runs (batched) on cuda when MetricOptions.device is cuda
    packages: tuple[str, ...] = ()  # importable module names the metric needs


MetricFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], np.ndarray, Executor | None, MetricOptions],
                    np.ndarray]
AvailabilityCheck = Callable[[MetricOptions], str | None]


@dataclass(frozen=True)
class Metric:
    name: str
    category: str
    higher_is_better: bool
    needs_reference: bool
    fn: MetricFn
    sample_rate: int | None = None  # the rate the metric runs at; None: each utterance's native rate
    resources: MetricResources = MetricResources()
    check: AvailabilityCheck | None = None  # extra check (e.g. weights present), returns a reason or None

    def available(self, options: MetricOptions = DEFAULT_OPTIONS) -> bool:
        return check_available(self, options) is None


def check_available(metric: Metric, options: MetricOptions = DEFAULT_OPTIONS) -> str | None:
    """Why ``metric`` cannot run with ``options`` (missing package or weights), or None when it can."""
    missing = [p for p in metric.resources.packages if importlib.util.find_spec(p) is None]
    if missing:
        return f"package(s) {', '.join(missing)} not installed (pip install {' '.join(missing)})"
    if metric.check is not None:
        try:
            return metric.check(options)
        except MetricUnavailable as exc:
            return exc.reason
    return None


def weights_check(name: str, what: str) -> AvailabilityCheck:
    """An availability check that the weights of ``name`` are configured and exist."""

    def check(options: MetricOptions) -> str | None:
        options.weights_path(name, what)
        return None

    return check


def split_available(metrics: Sequence[Metric], options: MetricOptions = DEFAULT_OPTIONS
                    ) -> tuple[list[Metric], dict[str, str]]:
    """The metrics that can run, and ``{name: reason}`` for those that cannot (to record and move on)."""
    ok, skipped = [], {}
    for m in metrics:
        reason = check_available(m, options)
        if reason is None:
            ok.append(m)
        else:
            skipped[m.name] = reason
    return ok, skipped


METRICS: Registry[Metric] = Registry("metric", package="curator.evaluation.metrics")


def register_metric(name: str, category: str, higher_is_better: bool = True, needs_reference: bool = True,
                    sample_rate: int | None = None, resources: MetricResources = MetricResources(),
                    check: AvailabilityCheck | None = None) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering a batched metric function under ``name`` in URGENT ``category``."""
    if category not in CATEGORIES:
        raise ValueError(f"metric '{name}': category '{category}' is not one of {', '.join(CATEGORIES)}")

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.register(name)(Metric(name, category, higher_is_better, needs_reference, fn, sample_rate,
                                      resources, check))
        return fn

    return deco


def map_utterances(fn: Callable[[np.ndarray, np.ndarray, int], float], estimates: Sequence[np.ndarray],
                   references: Sequence[np.ndarray], srs: np.ndarray, pool: Executor | None) -> np.ndarray:
    """Apply a per-utterance metric, across ``pool``'s processes when given."""
    mapper = pool.map if pool is not None else map
    return np.fromiter(mapper(fn, estimates, references, [int(s) for s in srs]), dtype=np.float64,
                       count=len(estimates))


def at_rate(signals: Sequence[np.ndarray | None], srs: np.ndarray, sr: int | None) -> list[np.ndarray | None]:
    """``signals`` resampled to ``sr`` (soxr HQ, as the official scripts resample); unchanged when ``sr`` is None."""
    if sr is None:
        return list(signals)
    return [None if x is None else resample(np.asarray(x, np.float32), int(r), sr)
            for x, r in zip(signals, srs, strict=True)]


def compute_metrics(metrics: Sequence[Metric], estimates: Sequence[np.ndarray],
                    references: Sequence[np.ndarray | None], srs: np.ndarray,
                    pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> dict[str, np.ndarray]:
    """Every metric for every utterance; NaN where a reference-needing metric has no reference.

    Raises :class:`MetricUnavailable` for a metric that cannot load; filter with :func:`split_available` first.
    """
    srs = np.asarray(srs)
    has_ref = np.array([r is not None for r in references], dtype=bool)
    ref_idx = np.flatnonzero(has_ref)
    cache: dict[int | None, tuple[list[np.ndarray | None], list[np.ndarray | None]]] = {}
    out: dict[str, np.ndarray] = {}
    for m in metrics:
        if m.sample_rate not in cache:  # metrics at the same rate share one resampling
            cache[m.sample_rate] = (at_rate(estimates, srs, m.sample_rate), at_rate(references, srs, m.sample_rate))
        est, ref = cache[m.sample_rate]
        rates = srs if m.sample_rate is None else np.full(len(srs), m.sample_rate)
        values = np.full(len(estimates), np.nan)
        idx = ref_idx if m.needs_reference else np.arange(len(estimates))
        if len(idx):
            values[idx] = m.fn([est[i] for i in idx], [ref[i] for i in idx], rates[idx], pool, options)
        out[m.name] = values
    return out

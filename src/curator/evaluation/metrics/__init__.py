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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curator.audio import resample
from curator.registry import Registry

CATEGORIES = ("non_intrusive", "intrusive", "task_independent", "task_dependent")
DEVICES = ("cpu", "cuda")
CACC_REFERENCES = ("text", "reference_audio")
LID_REFERENCES = ("language", "reference_audio")


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
    ``batch_size`` is how many utterances one forward pass takes on cuda. On CPU a model-based metric runs one
    utterance at a time unless ``batch_on_cpu`` is set: batched and per-utterance values agree only to float
    tolerance (different kernels, summation orders), and the eval stage's CPU outputs are hashed in dvc.lock, so
    the stage keeps CPU per-utterance (batching is no faster there either: 0.8-1.0x measured by
    ``benchmarks/bench_eval_metrics.py``, against 1.3-4.4x on an H200). Tests and the benchmark set it to check
    and time the batched path on CPU. :attr:`batch` is the effective size a metric uses.
    """

    device: str = "cpu"
    batch_size: int = 8
    weights: Mapping[str, str] = field(default_factory=dict)
    batch_on_cpu: bool = False
    cacc_reference: str = "text"  # CAcc against the row's transcript (official) or the clean reference's recognition
    lid_reference: str = "language"  # LID against the row's language (official) or the clean reference's

    @property
    def batch(self) -> int:
        """Utterances per forward pass: ``batch_size`` on cuda (or with ``batch_on_cpu``), else 1."""
        return self.batch_size if self.device == "cuda" or self.batch_on_cpu else 1

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"metric device '{self.device}' is not one of {', '.join(DEVICES)}")
        if self.batch_size < 1:
            raise ValueError(f"metric batch_size must be >= 1, got {self.batch_size}")
        if self.cacc_reference not in CACC_REFERENCES:
            raise ValueError(f"cacc_reference '{self.cacc_reference}' is not one of {', '.join(CACC_REFERENCES)}")
        if self.lid_reference not in LID_REFERENCES:
            raise ValueError(f"lid_reference '{self.lid_reference}' is not one of {', '.join(LID_REFERENCES)}")

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
    gpu_capable: bool = False  # runs on cuda when MetricOptions.device is cuda
    batched: bool = False  # takes MetricOptions.batch utterances per pass (= per-utterance to 1e-4 CPU, 2e-4 cuda)
    packages: tuple[str, ...] = ()  # importable module names the metric needs


MetricFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], np.ndarray, Executor | None, MetricOptions],
                    np.ndarray]
AvailabilityCheck = Callable[[MetricOptions], str | None]
StandIn = Callable[[MetricOptions], str | None]
"""The substitute of the official model a metric runs under given options, in words, or None."""
PoolWeights = Callable[[Sequence[Mapping[str, Any]], MetricOptions], np.ndarray | None]
"""Each utterance's weight in the set-level figure the official script reports in place of the mean (from the
utterances' manifest rows), or None under options where it reports none."""


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
    needs_labels: bool = False  # also takes ``labels=``: each utterance's manifest row (text, language)
    stand_in: StandIn | None = None  # what replaces the official model under these options (None: the official one)
    pool_weights: PoolWeights | None = None  # the official set-level figure is this weighted mean (CAcc: pooled CER)

    def substitute(self, options: MetricOptions = DEFAULT_OPTIONS) -> str | None:
        """The model that stands in for the official one under ``options``, in words; None when it is the official
        model (or the metric uses none)."""
        return None if self.stand_in is None else self.stand_in(options)

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
                    check: AvailabilityCheck | None = None, needs_labels: bool = False,
                    stand_in: StandIn | None = None,
                    pool_weights: PoolWeights | None = None) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering a batched metric function under ``name`` in URGENT ``category`` (``needs_labels``:
    it is also called with ``labels=``, the utterances' manifest rows, e.g. for a transcript; ``stand_in``: what
    it runs instead of the official model under given options, reported beside the official rank;
    ``pool_weights``: where the official script reports a set-level figure other than the mean of the utterances'
    values, the utterances' weights in it, as a weighted mean)."""
    if category not in CATEGORIES:
        raise ValueError(f"metric '{name}': category '{category}' is not one of {', '.join(CATEGORIES)}")

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.register(name)(Metric(name, category, higher_is_better, needs_reference, fn, sample_rate,
                                      resources, check, needs_labels, stand_in, pool_weights))
        return fn

    return deco


def length_batches(lengths: Sequence[int], batch_size: int, equal_length: bool = False) -> list[np.ndarray]:
    """Indices grouped into batches of at most ``batch_size``, by increasing length (stable), so padding is small.

    ``equal_length``: only utterances of the same length share a batch, for models whose output changes with
    zero padding (no attention mask, or group norm over time): each batch is then exactly its utterances.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    if not equal_length:
        return [order[lo:lo + batch_size] for lo in range(0, len(order), batch_size)]
    out: list[np.ndarray] = []
    for group in np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1):
        out += [group[lo:lo + batch_size] for lo in range(0, len(group), batch_size)]
    return [b for b in out if len(b)]


def model_batches(model: Any, signals: Sequence[np.ndarray], batch: int) -> Iterator[tuple[np.ndarray, bool]]:
    """``(indices, use_mask)`` of the batches a transformers audio model scores ``signals`` in.

    Zero padding with an attention mask leaves the valid frames of a wav2vec2-style model unchanged only when its
    feature encoder uses layer norm (``config.feat_extract_norm == "layer"``, e.g. wav2vec2-large-lv60, MMS); with
    group norm (HuBERT base, mHuBERT-147) each channel is normalised over the whole padded length, and such models
    take no mask (transformers' documentation says to zero-pad them without one), so only equal lengths share a
    batch. ``use_mask`` is True when the batch needs padding (a batch of equal lengths takes no mask, as a
    per-utterance call takes none).
    """
    invariant = getattr(model.config, "feat_extract_norm", None) == "layer"
    for idx in length_batches([len(x) for x in signals], batch, equal_length=not invariant):
        yield idx, len({len(signals[i]) for i in idx}) > 1


def frame_counts(model: Any, lengths: Sequence[int]) -> list[int]:
    """Output frames of a wav2vec2-style model for inputs of ``lengths`` samples (its conv feature encoder)."""
    import torch

    return [int(n) for n in model._get_feat_extract_output_lengths(torch.as_tensor(list(lengths)))]


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
                    pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS,
                    labels: Sequence[Mapping[str, Any]] | None = None) -> dict[str, np.ndarray]:
    """Every metric for every utterance; NaN where a reference-needing metric has no reference. ``labels``:
    each utterance's manifest row (``text``, ``language``), handed to the metrics that need labels (an empty
    row each when None).

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
        if len(idx) and m.needs_labels:
            rows = [{} if labels is None else labels[i] for i in idx]
            values[idx] = m.fn([est[i] for i in idx], [ref[i] for i in idx], rates[idx], pool, options, labels=rows)
        elif len(idx):
            values[idx] = m.fn([est[i] for i in idx], [ref[i] for i in idx], rates[idx], pool, options)
        out[m.name] = values
    return out

"""Typed, validated view of the ``eval`` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from curator.config import ConfigError, check_choice, check_range, register_section
from curator.contract.flags import FLAGS_COLUMN

SNR_BIN_COLUMN = "snr_bin"
"""Slice of the input SNR (the manifest's ``snr_db``) by ``eval.snr_bins_db``."""
SLICE_COLUMNS = ("distortion", FLAGS_COLUMN, "sr", "language", "source", "speaker", SNR_BIN_COLUMN)
"""Per-utterance columns a slice can split by; ``augmentations`` (the per-augmentation flags) gives one
overlapping slice per flag (:mod:`curator.evaluation.slicing`)."""


def _default_metrics() -> list[str]:
    return ["pesq", "estoi", "sdr", "si_sdr", "lsd", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "distillmos",
            "spk_sim"]


def _default_slices() -> list[str]:
    return ["distortion", FLAGS_COLUMN, "sr", "language", SNR_BIN_COLUMN]


@dataclass
class BootstrapParams:
    """Paired bootstrap of every comparison (resampling utterances)."""

    n_boot: int = 2000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        check_range("eval.bootstrap.n_boot", self.n_boot, lo=100)
        check_range("eval.bootstrap.confidence", self.confidence, lo=0.5, hi=1.0, lo_open=True)


@dataclass
class SliceVerdictParams:
    """When a per-slice difference gets a verdict (eval_slices.json, ``curator compare``, the efficacy report)."""

    min_utts: int = 10
    correction: Literal["bh", "none"] = "bh"

    def __post_init__(self) -> None:
        check_range("eval.slice_verdicts.min_utts", self.min_utts, lo=2)
        check_choice("eval.slice_verdicts.correction", self.correction, ("bh", "none"))


@register_section("eval")
@dataclass
class EvalParams:
    splits: list[Literal["dev", "test"]] = field(default_factory=lambda: ["test"])
    metrics: list[str] = field(default_factory=_default_metrics)
    peak: float = 0.9
    silent_reference_peak: float = 1e-4
    tail_fraction: float = 0.1
    slices: list[str] = field(default_factory=_default_slices)
    max_utts: int | None = None
    chunk_utts: int = 32
    num_workers: int = 2
    num_threads: int = 2
    onednn: bool = False
    """Run the model's and the metric models' CPU LSTMs and convolutions through oneDNN (faster, CPU-dependent
    last bits); False keeps ATen's own kernels, so the figures are the same on every x86-64-v3 CPU."""
    device: Literal["cpu", "cuda"] = "cpu"
    metric_batch_size: int = 16
    plot_metrics: list[str] = field(default_factory=lambda: ["pesq", "estoi", "dnsmos_ovrl", "si_sdr"])
    weights: dict[str, str] = field(default_factory=dict)
    cacc_reference: Literal["text", "reference_audio"] = "text"
    lid_reference: Literal["language", "reference_audio"] = "language"
    snr_bins_db: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0])
    bootstrap: BootstrapParams = field(default_factory=BootstrapParams)
    slice_verdicts: SliceVerdictParams = field(default_factory=SliceVerdictParams)

    def __post_init__(self) -> None:
        if not self.splits:
            raise ConfigError("'eval.splits' must name at least one of: dev, test")
        if not self.metrics:
            raise ConfigError("'eval.metrics' must name at least one metric")
        if len(set(self.metrics)) != len(self.metrics):
            raise ConfigError(f"'eval.metrics' lists a metric twice: {self.metrics}")
        check_range("eval.metric_batch_size", self.metric_batch_size, lo=1)
        if list(self.snr_bins_db) != sorted(self.snr_bins_db):
            raise ConfigError(f"'eval.snr_bins_db' must be increasing, got {self.snr_bins_db}")
        for s in self.slices:
            check_choice("eval.slices", s, SLICE_COLUMNS)
        check_range("eval.peak", self.peak, lo=0.0, hi=1.0, lo_open=True)
        check_range("eval.silent_reference_peak", self.silent_reference_peak, lo=0.0)
        check_range("eval.tail_fraction", self.tail_fraction, lo=0.0, hi=1.0, lo_open=True)
        check_range("eval.max_utts", self.max_utts, lo=1)
        check_range("eval.chunk_utts", self.chunk_utts, lo=1)
        check_range("eval.num_workers", self.num_workers, lo=0)
        check_range("eval.num_threads", self.num_threads, lo=1)


ENHANCE_SUBTYPES = {"wav": ("PCM_16", "PCM_24", "FLOAT"), "flac": ("PCM_16", "PCM_24")}
"""Output containers of ``curator enhance`` and the sample formats each can hold."""


@register_section("enhance")
@dataclass
class EnhanceParams:
    """``curator enhance``: how enhanced files are written (the model runs with the ``eval`` section's settings)."""

    format: Literal["wav", "flac"] = "wav"
    subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = "PCM_16"

    def __post_init__(self) -> None:
        check_choice("enhance.format", self.format, ENHANCE_SUBTYPES)
        check_choice(f"enhance.subtype (with enhance.format: {self.format})", self.subtype,
                     ENHANCE_SUBTYPES[self.format])

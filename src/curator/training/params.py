"""Typed, validated view of the ``train`` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from curator.config import ConfigError, check_range, register_section

STRATEGIES = ("auto", "ddp")
"""Strategies the native trainer supports: ``auto`` (Lightning's choice, one process per device list) and
``ddp`` (distributed data parallel; unused-parameter detection on, because a sampling-frequency-independent
BSRNN leaves the bands above a batch's Nyquist frequency without gradient)."""


@dataclass
class ModelParams:
    """Which registered architecture to train and its options (validated by the model's ``Options``).

    ``options`` are ``bsrnn``'s and ``flowse`` holds FlowSE's, so ``train.model.name=flowse`` alone switches
    models; after parsing, ``options`` are always the options of the model ``name`` selects.
    """

    name: str = "bsrnn"
    options: dict[str, Any] = field(default_factory=dict)
    flowse: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name == "flowse":
            self.options = dict(self.flowse)


@dataclass
class TrainDataParams:
    """Training crops: ``crop_samples`` (official: at most 96,000 samples at every rate, shorter utterances
    whole, batches padded to their longest) or ``crop_seconds`` (this project's: the same duration at every
    rate, shorter utterances zero-padded to it); exactly one of the two is set."""

    batch_size: int
    crop_seconds: float | None = None
    crop_samples: int | None = None
    val_crop_seconds: float | None = None
    max_val_utts: int | None = None
    num_workers: int = 0
    pin_memory: bool = False
    """Page-locked host batches for faster, asynchronous copies to a GPU (no effect on CPU)."""
    prefetch_factor: int = 2
    """Batches each worker loads ahead (only with ``num_workers`` > 0)."""
    persistent_workers: bool = True
    """Keep the worker processes between epochs (only with ``num_workers`` > 0)."""
    dynamic_mixing: bool = False
    """Draw each epoch's noise, RIR, SNR and augmentations afresh for every row's clean speech
    (:class:`curator.training.data.DynamicMixingDataset`); validation stays on the fixed dev pairs."""

    def __post_init__(self) -> None:
        if (self.crop_seconds is None) == (self.crop_samples is None):
            raise ConfigError(
                f"set exactly one of 'train.data.crop_seconds' ({self.crop_seconds}) and 'train.data.crop_samples' "
                f"({self.crop_samples}); the other must be null"
            )
        check_range("train.data.crop_seconds", self.crop_seconds, lo=0.0, lo_open=True)
        check_range("train.data.crop_samples", self.crop_samples, lo=1)
        check_range("train.data.batch_size", self.batch_size, lo=1)
        check_range("train.data.val_crop_seconds", self.val_crop_seconds, lo=0.0, lo_open=True)
        check_range("train.data.max_val_utts", self.max_val_utts, lo=1)
        check_range("train.data.num_workers", self.num_workers, lo=0)
        check_range("train.data.prefetch_factor", self.prefetch_factor, lo=1)


@dataclass
class LossParams:
    """The multi-resolution L1 loss (curator.training.loss); the defaults are the official recipe's."""

    windows: list[int]
    time_weight: float
    scale_invariant: bool = True
    normalize_variance: bool = True
    eps: float = 1e-6
    window: Literal["rect", "hann"] = "rect"
    reduction: Literal["sum", "mean"] = "sum"

    def __post_init__(self) -> None:
        if not self.windows or any(w < 2 or w % 2 for w in self.windows):
            raise ConfigError(f"'train.loss.windows' = {self.windows} must be a non-empty list of even sizes >= 2")
        check_range("train.loss.time_weight", self.time_weight, lo=0.0, hi=1.0)
        check_range("train.loss.eps", self.eps, lo=0.0, lo_open=True)


@dataclass
class OptimParams:
    lr: float
    weight_decay: float
    lr_gamma: float
    lr_step_epochs: int
    grad_clip: float | None = None
    fused: bool = True
    """torch's fused AdamW kernel (one pass per step on CPU and GPU). Its square root is exact, so an update is
    bit-identical on every x86-64-v3 CPU; the default per-tensor loop's ``torch.sqrt`` is not correctly rounded on
    CPU, and its last bits changed with the CPU (measured under ``qemu-x86_64 -cpu EPYC-Rome``)."""

    def __post_init__(self) -> None:
        check_range("train.optim.lr", self.lr, lo=0.0, lo_open=True)
        check_range("train.optim.weight_decay", self.weight_decay, lo=0.0)
        check_range("train.optim.lr_gamma", self.lr_gamma, lo=0.0, hi=1.0, lo_open=True)
        check_range("train.optim.lr_step_epochs", self.lr_step_epochs, lo=1)
        check_range("train.optim.grad_clip", self.grad_clip, lo=0.0, lo_open=True)


@dataclass
class OfficialParams:
    """Where the official URGENT baseline checkout lives and how to run it (backend ``official``)."""

    checkout: str = "third_party/urgent2026_challenge_track1"
    config: str = "conf/models/BSRNN_baseline.yaml"
    python: str = "python"
    device: Literal["cpu", "cuda"] = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    """Top-level keys of the official YAML config replaced in the copy this project runs (epochs, model size, ...);
    the keys the backend sets itself (see ``curator.training.backends.official.FORCED_KEYS``) are refused."""


@register_section("train")
@dataclass
class TrainParams:
    exp_name: str
    backend: str
    seed: int
    num_threads: int
    accelerator: Literal["cpu", "gpu", "auto"]
    max_steps: int
    val_every_steps: int
    log_every_steps: int
    model: ModelParams
    data: TrainDataParams
    loss: LossParams
    optim: OptimParams
    official: OfficialParams = field(default_factory=OfficialParams)
    resume_every_steps: int | None = None
    init_from: str | None = None
    """Start from these weights instead of a fresh initialisation: this project's checkpoint or an official baseline
    one (``curator.training.official_weights``); the architecture must be ``model``'s. Resuming overrides it."""
    max_nonfinite_steps: int = 10
    """Training steps in a row whose gradients may hold NaN or infinities (each is skipped, the weights unchanged)
    before training stops with an error (:class:`curator.training.module.NonFiniteGradientGuard`)."""
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    compile: bool = False
    """``torch.compile`` the model before training (mode ``compile_mode``); the math is unchanged."""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    cudnn_benchmark: bool = False
    """Let cuDNN pick the fastest kernels per input shape (GPU; picks may differ run to run)."""
    matmul_precision: Literal["highest", "high", "medium"] = "highest"
    """``torch.set_float32_matmul_precision``: high/medium allow TF32/bf16 inner products on a GPU."""
    onednn: bool = False
    """Let torch run its CPU LSTMs and convolutions through oneDNN (faster; its results depend on the CPU). False
    keeps ATen's own kernels, pinned to AVX2 with the rest (``curator.determinism``): the same checkpoint on every
    x86-64-v3 CPU. No effect on a GPU."""

    def __post_init__(self) -> None:
        if not self.exp_name or "/" in self.exp_name or self.exp_name.startswith("."):
            raise ConfigError(f"'train.exp_name' = {self.exp_name!r} must be a plain folder name (no '/')")
        check_range("train.num_threads", self.num_threads, lo=1)
        check_range("train.max_steps", self.max_steps, lo=1)
        check_range("train.val_every_steps", self.val_every_steps, lo=1)
        check_range("train.log_every_steps", self.log_every_steps, lo=1)
        check_range("train.resume_every_steps", self.resume_every_steps, lo=1)
        check_range("train.max_nonfinite_steps", self.max_nonfinite_steps, lo=1)
        check_range("train.devices", self.devices, lo=1)
        check_range("train.num_nodes", self.num_nodes, lo=1)
        for key, allowed in (("compile_mode", ("default", "reduce-overhead", "max-autotune")),
                             ("matmul_precision", ("highest", "high", "medium"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"'train.{key}' = {getattr(self, key)!r} is not one of {', '.join(allowed)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"'train.strategy' = {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.resume_every_steps is not None and self.resume_every_steps % self.val_every_steps:
            raise ConfigError(
                f"'train.resume_every_steps' = {self.resume_every_steps} must be a multiple of "
                f"'train.val_every_steps' = {self.val_every_steps}: the resume state is kept right after a validation"
            )
        if self.max_steps % self.val_every_steps:
            raise ConfigError(
                f"'train.max_steps' = {self.max_steps} must be a multiple of 'train.val_every_steps' = "
                f"{self.val_every_steps}, so the last step is validated and can become best.ckpt"
            )

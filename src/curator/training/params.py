"""Typed, validated view of the ``train`` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from curator.config import ConfigError, check_range, register_section


@dataclass
class ModelParams:
    """Which registered architecture to train and its options (validated by the model's ``Options``)."""

    name: str = "bsrnn"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainDataParams:
    crop_seconds: float
    batch_size: int
    val_crop_seconds: float | None = None
    max_val_utts: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_range("train.data.crop_seconds", self.crop_seconds, lo=0.0, lo_open=True)
        check_range("train.data.batch_size", self.batch_size, lo=1)
        check_range("train.data.val_crop_seconds", self.val_crop_seconds, lo=0.0, lo_open=True)
        check_range("train.data.max_val_utts", self.max_val_utts, lo=1)
        check_range("train.data.num_workers", self.num_workers, lo=0)


@dataclass
class LossParams:
    windows: list[int]
    time_weight: float
    scale_invariant: bool = True
    normalize_variance: bool = True
    eps: float = 1e-8

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

    def __post_init__(self) -> None:
        if not self.exp_name or "/" in self.exp_name or self.exp_name.startswith("."):
            raise ConfigError(f"'train.exp_name' = {self.exp_name!r} must be a plain folder name (no '/')")
        check_range("train.num_threads", self.num_threads, lo=1)
        check_range("train.max_steps", self.max_steps, lo=1)
        check_range("train.val_every_steps", self.val_every_steps, lo=1)
        check_range("train.log_every_steps", self.log_every_steps, lo=1)
        if self.max_steps % self.val_every_steps:
            raise ConfigError(
                f"'train.max_steps' = {self.max_steps} must be a multiple of 'train.val_every_steps' = "
                f"{self.val_every_steps}, so the last step is validated and can become best.ckpt"
            )

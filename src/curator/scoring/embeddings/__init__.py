"""Utterance-embedding backends for the ``ssl_embed`` column: one module each, ``@EMBEDDERS.register(name)``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from curator.registry import Registry


@dataclass
class EmbeddingOptions:
    """``score.options.embedding``: which backend, on which signal, and how to pool it."""

    backend: str = "logmel"
    signal: Literal["noisy", "clean"] = "noisy"
    model: str | None = None
    checkpoint: str | None = None
    layer: int = -1
    pooling: Literal["mean", "meanstd"] = "mean"
    n_mels: int = 40
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        from curator.config import check_choice, check_range

        check_choice("score.options.embedding.backend", self.backend, EMBEDDERS.names())
        check_range("score.options.embedding.n_mels", self.n_mels, lo=1)
        check_range("score.options.embedding.sample_rate", self.sample_rate, lo=1)


class EmbeddingBackend(ABC):
    """Maps a padded ``(batch, time)`` float32 batch at ``options.sample_rate`` to ``(batch, dim)`` float32."""

    def __init__(self, options: EmbeddingOptions, device: str = "cpu", mixed_precision: bool = False) -> None:
        self.options = options
        self.device = device
        self.mixed_precision = mixed_precision

    @abstractmethod
    def setup(self) -> None:
        """Load the model (once per worker)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding size (valid after ``setup()``)."""

    @abstractmethod
    def embed(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Embeddings of the valid part of every row."""

    def settings(self) -> dict[str, Any]:
        """What the embedding depends on besides the options (e.g. the model's config hash)."""
        return {}


def pool_frames(hidden: torch.Tensor, frames: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean (or mean and standard deviation) over the first ``frames[i]`` frames of ``hidden[i]`` (B, T, D)."""
    valid = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < frames[:, None]).to(hidden.dtype)
    count = valid.sum(1, keepdim=True).clamp(min=1)
    mean = (hidden * valid[..., None]).sum(1) / count
    if pooling == "mean":
        return mean
    var = (((hidden - mean[:, None, :]) ** 2) * valid[..., None]).sum(1) / count
    return torch.cat([mean, var.sqrt()], dim=-1)


EMBEDDERS: Registry[type[EmbeddingBackend]] = Registry("embedding backend", package="curator.scoring.embeddings")

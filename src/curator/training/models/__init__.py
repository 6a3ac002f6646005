"""Registry of enhancement architectures: a model is one module here plus ``@register_model``.

Every model maps a batch of waveforms at one sampling rate to enhanced waveforms of the same shape,
``forward(noisy: (batch, time), sr: int) -> (batch, time)``, and declares its options as a dataclass
(``Options``) so ``train.model.options`` in params.yaml is validated before any work. ``bsrnn`` is the
predictive baseline; ``flowse`` (flow matching on a BSRNN backbone) is the generative one. A model may also
define ``training_loss(noisy, clean, sr, generator=None)`` (its own objective, used by the trainer instead of
the regression loss; ``forward`` then runs its sampler) and an ``ema_decay`` attribute (the trainer keeps an
exponential moving average of its weights for validation and ``best.ckpt``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from torch import nn

from curator.config import ConfigError, parse
from curator.registry import Registry


class EnhancementModel(Protocol):
    """What a registered model class provides."""

    Options: type

    def __call__(self, options: Any) -> nn.Module: ...


MODELS: Registry[EnhancementModel] = Registry("model", package="curator.training.models")


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: register an ``nn.Module`` whose ``__init__`` takes its ``Options`` dataclass."""
    return MODELS.register(name)  # type: ignore[return-value]


def model_options(name: str, options: Mapping[str, Any], where: str = "train.model.options") -> Any:
    """Validate ``options`` against model ``name``'s ``Options`` dataclass (ConfigError naming the key)."""
    try:
        cls = MODELS.get(name)
    except KeyError as exc:
        raise ConfigError(f"'train.model.name': {exc.args[0]}") from None
    return parse(cls.Options, dict(options), where)


def build_model(name: str, options: Mapping[str, Any], where: str = "train.model.options") -> nn.Module:
    """Instantiate registered model ``name`` from a plain options mapping."""
    return MODELS.get(name)(model_options(name, options, where))  # type: ignore[return-value]


def options_dict(options: Any) -> dict[str, Any]:
    """The plain-mapping form of an ``Options`` dataclass (what checkpoints and config.yaml store)."""
    return dataclasses.asdict(options)

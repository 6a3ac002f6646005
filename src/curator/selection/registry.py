"""The selector registry: a new strategy is one module in ``selection/strategies/`` plus ``@register_selector``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from curator.registry import Registry

if TYPE_CHECKING:
    from curator.selection.base import BaseSelector

SELECTORS: Registry[type[BaseSelector]] = Registry("selector", package="curator.selection.strategies")


def register_selector(name: str) -> Callable[[type[BaseSelector]], type[BaseSelector]]:
    """Class decorator: make a :class:`BaseSelector` subclass available as ``select.name: <name>``."""
    return SELECTORS.register(name)


def build(name: str, **kwargs: Any) -> BaseSelector:
    """Instantiate the selector registered as ``name`` (KeyError listing the valid names otherwise)."""
    return SELECTORS.get(name)(**kwargs)

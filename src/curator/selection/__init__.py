"""Selection: which hours to train on (strategies, quotas, diversity, tail statistics).

``build(name, params=..., filters=..., quotas=...)`` returns a registered :class:`BaseSelector`; its
``select(df)`` returns the curated rows. Strategies live one per module in ``selection/strategies/``.
"""

from curator.selection.base import BaseSelector, Ranking, Selection
from curator.selection.registry import SELECTORS, build, register_selector

__all__ = ["SELECTORS", "BaseSelector", "Ranking", "Selection", "build", "register_selector"]

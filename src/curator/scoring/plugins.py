"""Plug-in checks of the ``score`` section (called by :func:`curator.config.load_section`)."""

from __future__ import annotations

from curator.config import ConfigError, check_choice, parse
from curator.contract.scores import PROBE_COLUMNS
from curator.scoring.base import SCORERS
from curator.scoring.executors import EXECUTORS
from curator.scoring.params import ScoreParams


def validate(params: ScoreParams) -> ScoreParams:
    """Scorer and executor names must be registered, proxy weights must read columns an enabled scorer writes,
    and ``score.options.<scorer>`` are parsed into each scorer's ``Options`` dataclass."""
    if not params.scorers:
        raise ConfigError(f"'score.scorers' is empty; choose from: {', '.join(SCORERS.names())}")
    for i, name in enumerate(params.scorers):
        check_choice(f"score.scorers[{i}]", name, SCORERS.names())
    check_choice("score.executor", params.executor, EXECUTORS.names())
    for name in params.options:
        check_choice("score.options", name, SCORERS.names())
    produced = {col for name in params.scorers for col in SCORERS.get(name).outputs} | set(PROBE_COLUMNS)
    for where, weights in (("loss_proxy", params.loss_proxy.weights), ("ref_quality", params.ref_quality.weights)):
        for col, w in weights.items():
            if w > 0 and col not in produced:
                raise ConfigError(f"'score.{where}.weights.{col}' > 0 but no enabled scorer writes '{col}'; "
                                  f"enable its scorer in score.scorers or set the weight to 0")
    params.options = {
        name: opts if not isinstance(opts, dict) else parse(SCORERS.get(name).Options, opts, f"score.options.{name}")
        for name, opts in ((n, params.options.get(n) or {}) for n in sorted(set(params.options) | set(params.scorers)))
    }
    return params

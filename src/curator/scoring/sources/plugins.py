"""Plug-in checks of the ``source_score`` section (called by :func:`curator.config.load_section`)."""

from __future__ import annotations

from curator.config import ConfigError, check_choice
from curator.scoring.base import SCORERS
from curator.scoring.executors import EXECUTORS
from curator.scoring.sources.params import SourceScoreParams
from curator.scoring.sources.scorers import NOISE_SCORERS, RIR_SCORERS, SOURCE_SCORERS


def reference_scorers() -> list[str]:
    """Pair scorers that read the clean target alone (no ``in_*`` input-difficulty column): valid on sources."""
    return [n for n in SCORERS.names() if not any(c.startswith("in_") for c in SCORERS.get(n).outputs)]


def validate(params: SourceScoreParams) -> SourceScoreParams:
    """Scorer names per kind and the executor name must be registered (and fit the kind)."""
    valid = reference_scorers()
    for i, name in enumerate(params.speech.scorers):
        if name in SCORERS.names() and name not in valid:
            raise ConfigError(f"'source_score.speech.scorers[{i}]' = '{name}' compares a noisy input with its "
                              f"clean target: a source has no noisy input; choose from: {', '.join(valid)}")
        check_choice(f"source_score.speech.scorers[{i}]", name, valid)
    for where, names, choices in (("noise", params.noise.scorers, NOISE_SCORERS),
                                  ("rir", params.rir.scorers, RIR_SCORERS)):
        for i, name in enumerate(names):
            check_choice(f"source_score.{where}.scorers[{i}]", name, choices)
            SOURCE_SCORERS.get(name)
    check_choice("source_score.executor", params.executor, EXECUTORS.names())
    return params

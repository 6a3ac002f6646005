"""Typed, validated view of the ``probe`` section of params.yaml (the probe-model loss stage)."""

from __future__ import annotations

from dataclasses import dataclass

from curator.config import ConfigError, check_choice, check_range, register_section

RANKINGS = ("holdout_loss", "reducible_loss")


@register_section("probe")
@dataclass
class ProbeParams:
    folds: int = 2
    train_utterances: int = 2000
    steps: int = 200
    batch_size: int = 8
    crop_sec: float = 2.0
    learning_rate: float = 1e-3
    hidden: int = 128
    layers: int = 3
    sample_rate: int = 16000
    n_fft: int = 512
    compress: float = 0.3
    seed: int = 0
    threads: int = 1
    eval_batch_size: int = 16
    ranking: str = "holdout_loss"
    """holdout_loss: the held-out (irreducible-model) loss alone; reducible_loss: also RHO-LOSS's reducible
    loss, current-model loss minus held-out loss (see :func:`curator.scoring.probe.fit.cross_fit`)."""
    current_steps: int = 50
    """Optimiser steps of the current-model probe (reducible_loss only): how far into training it stands."""

    def __post_init__(self) -> None:
        check_range("probe.folds", self.folds, lo=2)
        check_range("probe.train_utterances", self.train_utterances, lo=1)
        check_range("probe.steps", self.steps, lo=1)
        check_range("probe.batch_size", self.batch_size, lo=1)
        check_range("probe.crop_sec", self.crop_sec, lo=0.0, lo_open=True)
        check_range("probe.learning_rate", self.learning_rate, lo=0.0, lo_open=True)
        check_range("probe.hidden", self.hidden, lo=1)
        check_range("probe.layers", self.layers, lo=1)
        check_range("probe.sample_rate", self.sample_rate, lo=1)
        check_range("probe.n_fft", self.n_fft, lo=16)
        check_range("probe.compress", self.compress, lo=0.0, hi=1.0, lo_open=True)
        check_range("probe.threads", self.threads, lo=1)
        check_range("probe.eval_batch_size", self.eval_batch_size, lo=1)
        check_choice("probe.ranking", self.ranking, RANKINGS)
        check_range("probe.current_steps", self.current_steps, lo=1)
        if self.ranking == "reducible_loss" and self.current_steps > self.steps:
            raise ConfigError(f"'probe.current_steps' = {self.current_steps} exceeds probe.steps = {self.steps}: the "
                              "current model stands partway into training, the held-out probes train to the end")

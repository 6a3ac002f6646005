"""Trainer backends: ``native`` (this package's Lightning trainer) and ``official`` (the URGENT checkout).

A backend is a function ``TrainJob -> summary dict`` registered with ``@BACKENDS.register(name)``; it must
leave the best checkpoint at ``job.exp_dir / "best.ckpt"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from curator.registry import Registry
from curator.training.params import TrainParams


@dataclass
class TrainJob:
    """Everything a backend needs: validated params, the joined rows, and where outputs go."""

    params: TrainParams
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame
    exp_dir: Path
    live_dir: Path

    @property
    def best_ckpt(self) -> Path:
        return self.exp_dir / "best.ckpt"


Backend = Callable[[TrainJob], dict[str, Any]]
BACKENDS: Registry[Backend] = Registry("trainer backend", package="curator.training.backends")

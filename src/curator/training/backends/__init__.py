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


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive training steps had NaN or infinite gradients (``train.max_nonfinite_steps``)."""


@dataclass
class TrainJob:
    """Everything a backend needs: validated params, the joined rows, and where outputs go."""

    params: TrainParams
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame
    exp_dir: Path
    live_dir: Path
    config_sha256: str = ""
    """sha256 of the frozen config (what ``config.yaml`` holds): the resume state's fingerprint."""
    mixing: Any = None
    """``curator.training.data.DynamicMixing`` when ``train.data.dynamic_mixing`` is on (the native backend mixes
    the training pairs afresh every epoch from it), else None."""
    val_without_target: int = 0
    """Dev rows left out of ``val_rows`` because they have no clean reference (reported in the train metrics)."""

    @property
    def best_ckpt(self) -> Path:
        return self.exp_dir / "best.ckpt"

    @property
    def config_path(self) -> Path:
        """The frozen config the CLI writes before training (params, curated list and manifests)."""
        return self.exp_dir / "config.yaml"

    @property
    def launcher_zero(self) -> bool:
        """Whether this process writes outputs (global rank 0 of a data-parallel run, or the only process)."""
        from curator.training.parallel import is_launcher_zero

        return is_launcher_zero()


Backend = Callable[[TrainJob], dict[str, Any]]
BACKENDS: Registry[Backend] = Registry("trainer backend", package="curator.training.backends")
NATIVE_BACKEND = "native"
"""This project's own trainer; the options only it implements (``train.init_from``, dynamic mixing) name it."""


def screen_job(job: TrainJob, supports_rate: Callable[[int], str | None] | None = None) -> dict[str, Any]:
    """Drop the training and validation rows that cannot reach a loss (see
    :func:`curator.training.data.screen_rows`), name each on stderr, and return the counts and names for the
    train metrics. An error when nothing is left to train or validate on, naming the first causes."""
    import sys

    from curator.training.data import CuratedListError, screen_rows, skip_report

    report: dict[str, Any] = {"val_without_target": job.val_without_target}
    for name in ("train", "val"):
        rows = getattr(job, f"{name}_rows")
        kept, skipped = screen_rows(rows, supports_rate)
        for s in skipped:
            print(f"train: skip {name} utterance {s['utt_id']} ({s['path']}): {s['reason']}", file=sys.stderr)
        if kept.empty:
            causes = "; ".join(f"{s['utt_id']}: {s['reason']}" for s in skipped[:3])
            raise CuratedListError(f"every one of the {len(rows)} {name} utterances was skipped ({causes}); "
                                   "fix or drop these files and re-run the manifest stage")
        setattr(job, f"{name}_rows", kept)
        report[f"skipped_{name}"] = skip_report(skipped)
    return report

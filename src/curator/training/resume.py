"""Resume after a kill: the native trainer keeps a last state every ``train.resume_every_steps`` steps.

The state lives in ``models/<exp>/resume/``, outside the stage's declared outputs, so ``dvc repro`` (which
deletes a stage's outputs before it reruns the stage) never removes it. It holds:

- ``last.ckpt``: Lightning's full checkpoint (weights, AdamW moments, the StepLR scheduler, the loops' progress,
  the best-checkpoint callback's state) plus this module's extra: the epoch, how many batches of that epoch
  were consumed, and the python/numpy/torch RNG states;
- ``best.ckpt``: a copy of the run's best weights so far (the stage output itself is deleted by DVC);
- ``live/``: a copy of the DVCLive folder, so the restored curves continue where they stopped;
- ``state.json``: the step and a fingerprint of everything the run depends on (params, curated list and
  manifests: the sha256 of ``config.yaml``'s text, ``TrainJob.config_sha256``). A state of another configuration is discarded with a message.

A snapshot is written right after a validation (so the best checkpoint and the validation history are
consistent with the weights), atomically: a kill during a save leaves the previous snapshot whole. A run
that ends normally removes the folder. The sampler replays an epoch from ``(seed, epoch)``, so skipping
the consumed batches puts it exactly where it stopped (a snapshot that ended an epoch restarts on the next,
as Lightning's loops do): a resumed CPU run ends with the same weights and curves as an uninterrupted one
(tests/training/test_resume.py kills a run mid-epoch, at an epoch's end, and twice).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from curator.io import atomic_open, atomic_path
from curator.training.data import SampleRateBatchSampler

RESUME_DIRNAME = "resume"
LAST = "last.ckpt"
BEST = "best.ckpt"
LIVE = "live"
STATE = "state.json"
EXTRA_KEY = "curator_resume"


def _numpy_state() -> dict[str, Any]:
    """numpy's legacy global RNG state as tensors and numbers (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is the state to keep)
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))  # noqa: NPY002


class ResumeState:
    """The resume folder of one experiment."""

    def __init__(self, exp_dir: Path) -> None:
        self.dir = exp_dir / RESUME_DIRNAME

    @property
    def last(self) -> Path:
        return self.dir / LAST

    @property
    def staging(self) -> Path:
        return self.dir.with_name(RESUME_DIRNAME + ".new")

    def find(self, fp: str, mutate: bool = True) -> tuple[Path | None, str]:
        """The checkpoint to resume from (None: start afresh) and a line saying why.

        ``mutate=False`` (ranks other than 0) only reads: rank 0 alone repairs or removes a state."""
        if not mutate:
            state_file = self.dir / STATE
            ok = state_file.is_file() and self.last.is_file() and json.loads(
                state_file.read_text()).get("fingerprint") == fp
            return (self.last if ok else None), ""
        if not self.dir.exists() and (self.staging / STATE).is_file():
            os.replace(self.staging, self.dir)  # a kill between the two renames of a snapshot swap
        shutil.rmtree(self.staging, ignore_errors=True)
        shutil.rmtree(self.dir.with_name(RESUME_DIRNAME + ".old"), ignore_errors=True)
        state_file = self.dir / STATE
        if not state_file.is_file() or not self.last.is_file():
            if self.dir.exists():
                shutil.rmtree(self.dir)
                return None, f"incomplete resume state in {self.dir} removed; starting afresh"
            return None, ""
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != fp:
            shutil.rmtree(self.dir)
            return None, (f"resume state in {self.dir} was for another configuration (params, curated list or "
                          "manifests changed); removed, starting afresh")
        return self.last, f"resuming from {self.last} (step {state['step']})"

    def restore_outputs(self, best_ckpt: Path, live_dir: Path) -> None:
        """Put back the best checkpoint and DVCLive folder that the stage's rerun deleted."""
        if (self.dir / BEST).is_file():
            with atomic_path(best_ckpt) as tmp:
                shutil.copyfile(self.dir / BEST, tmp)
        if (self.dir / LIVE).is_dir():
            shutil.rmtree(live_dir, ignore_errors=True)
            shutil.copytree(self.dir / LIVE, live_dir)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _swap_in(new: Path, dst: Path) -> None:
    """Replace folder ``dst`` by ``new`` with two renames (ResumeState.find recovers a kill between them)."""
    old = dst.with_name(dst.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        os.replace(dst, old)
    os.replace(new, dst)
    shutil.rmtree(old, ignore_errors=True)


class ResumeCheckpoint(L.Callback):
    """After every validation at a multiple of ``every`` steps, snapshot the run into ``state.dir``."""

    def __init__(self, state: ResumeState, every: int, fp: str, best_ckpt: Path, live_dir: Path,
                 sampler: SampleRateBatchSampler) -> None:
        self.state = state
        self.sampler = sampler
        self.every = every
        self.fp = fp
        self.best_ckpt = best_ckpt
        self.live_dir = live_dir

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if trainer.sanity_checking or step == 0 or step % self.every or step >= trainer.max_steps:
            return
        new = self.state.staging
        if trainer.is_global_zero:
            shutil.rmtree(new, ignore_errors=True)
            new.mkdir(parents=True)
        trainer.strategy.barrier("resume-snapshot")
        # collective: every rank takes part, rank 0 writes. The full state (optimizer, scheduler, loops, callbacks)
        # that resuming needs; weights_only=False is Lightning's default, said here so it prints no notice
        trainer.save_checkpoint(new / LAST, weights_only=False)
        if trainer.is_global_zero:
            if self.best_ckpt.is_file():
                shutil.copyfile(self.best_ckpt, new / BEST)
            if self.live_dir.is_dir():
                shutil.copytree(self.live_dir, new / LIVE)
            with atomic_open(new / STATE) as f:  # written last: a snapshot without it is incomplete
                json.dump({"step": step, "fingerprint": self.fp}, f)
            _swap_in(new, self.state.dir)
        trainer.strategy.barrier("resume-snapshot-done")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[EXTRA_KEY] = {
            "epoch": trainer.current_epoch,
            # batches of this epoch already trained on (the sampler skips them on resume)
            "batches_in_epoch": trainer.fit_loop.epoch_loop.batch_progress.current.completed,
            "rng": {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()},
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        extra = checkpoint[EXTRA_KEY]
        epoch, consumed = int(extra["epoch"]), int(extra["batches_in_epoch"])
        if consumed >= len(self.sampler):
            # the snapshot ended an epoch: Lightning's loops restart on the next one (they count the finished
            # epoch as done), so the sampler must too; skipping a whole epoch instead would give Lightning an
            # empty epoch and put its epoch counter, hence every later snapshot's epoch, one ahead
            epoch, consumed = epoch + 1, 0
        # the loops restore before the train loader is first iterated: the sampler starts where it stopped
        self.sampler.set_epoch(epoch)
        self.sampler.skip_next(consumed)
        rng = extra["rng"]
        random.setstate(rng["python"])
        _set_numpy_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])

"""Lightning pieces: the module (model, baseline loss, AdamW + StepLR), best-checkpoint callback, seeding."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch

from curator.training.checkpoint import save_checkpoint
from curator.training.data import Batch
from curator.training.loss import MultiResL1SpecLoss
from curator.training.models import build_model
from curator.training.params import LossParams, OptimParams

MONITOR = "val/loss"


class EnhancementModule(L.LightningModule):
    """Trains ``model`` to map noisy to clean waveforms; logs ``train/loss`` and ``val/loss``."""

    def __init__(self, model_name: str, model_options: dict[str, Any], loss: LossParams, optim: OptimParams) -> None:
        super().__init__()
        self.model_name = model_name
        self.model_options = model_options
        self.model = build_model(model_name, model_options)
        self.criterion = MultiResL1SpecLoss(**dataclasses.asdict(loss))
        self.optim = optim

    def forward(self, noisy: torch.Tensor, sr: int) -> torch.Tensor:
        return self.model(noisy, sr)

    def _loss(self, batch: Batch) -> torch.Tensor:
        return self.criterion(self.model(batch.noisy, batch.sr), batch.clean)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch.noisy))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.log(MONITOR, self._loss(batch), on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(batch.noisy))

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.optim.lr_step_epochs, gamma=self.optim.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class BestCheckpoint(L.Callback):
    """After each validation, atomically save the weights if ``val/loss`` improved."""

    def __init__(self, path: Path, model_name: str, options: dict[str, Any]) -> None:
        self.path = path
        self.model_name = model_name
        self.options = options
        self.best = math.inf
        self.best_step = -1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(MONITOR)
        if trainer.sanity_checking or value is None or not float(value) < self.best:
            return
        self.best, self.best_step = float(value), trainer.global_step
        save_checkpoint(self.path, pl_module.model, self.model_name, self.options,
                        step=self.best_step, val_loss=self.best)


def seed_everything(seed: int, num_threads: int) -> None:
    """Seed python/numpy/torch, fix the thread count and ask torch for deterministic kernels."""
    L.seed_everything(seed, workers=True, verbose=False)
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)

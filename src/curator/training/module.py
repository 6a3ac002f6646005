"""Lightning pieces: the module (model, baseline loss, AdamW + StepLR), best-checkpoint callback, seeding.

A model with its own objective defines ``training_loss(noisy, clean, sr, generator=None)`` (FlowSE: flow
matching); it is used for training and validation instead of the regression loss, with a generator seeded per
validation batch so ``val/loss`` is comparable across validations. A model with an ``ema_decay`` attribute
(not None) gets an exponential moving average of its weights, updated after every optimiser step; validation
and ``best.ckpt`` use the averaged weights.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch

from curator.training.backends import NonFiniteTrainingError
from curator.training.checkpoint import CheckpointError, save_checkpoint
from curator.training.data import Batch
from curator.training.loss import MultiResL1SpecLoss
from curator.training.models import build_model
from curator.training.official_weights import initial_weights
from curator.training.params import LossParams, OptimParams

MONITOR = "val/loss"


class WeightEMA(torch.nn.Module):
    """Exponential moving average of a model's parameters, with the warm-up of ``torch_ema`` (the official
    FlowSE trainer's): after update ``n`` the decay is ``min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.decay = float(decay)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        n = int(self.num_updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        for avg, new in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(new.detach(), 1.0 - decay)


class EnhancementModule(L.LightningModule):
    """Trains ``model`` to map noisy to clean waveforms; logs ``train/loss`` and ``val/loss``."""

    def __init__(self, model_name: str, model_options: dict[str, Any], loss: LossParams, optim: OptimParams) -> None:
        super().__init__()
        self.model_name = model_name
        self.model_options = model_options
        self.model = build_model(model_name, model_options)
        decay = getattr(self.model, "ema_decay", None)
        self.ema = None if decay is None else WeightEMA(self.model, decay)
        self.criterion = MultiResL1SpecLoss(**dataclasses.asdict(loss))
        self.optim = optim

    def forward(self, noisy: torch.Tensor, sr: int) -> torch.Tensor:
        return self.model(noisy, sr)

    def init_weights(self, path: str) -> tuple[str, list[str]]:
        """Load ``train.init_from``'s weights (and restart the moving average from them); returns what the file is
        and the options in which it differs from ``train.model`` while its weights still fit (e.g. sampler steps).
        CheckpointError when they do not fit, naming the differing options."""
        name, options, state, what = initial_weights(path)
        differ = sorted(k for k in set(options) | set(self.model_options)
                        if options.get(k) != self.model_options.get(k))
        notes = [f"{k} (checkpoint {options.get(k)!r}, params {self.model_options.get(k)!r})" for k in differ]
        if name != self.model_name:
            raise CheckpointError(f"train.init_from '{path}' ({what}) holds a {name} model; train.model.name is "
                                  f"{self.model_name}")
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"train.init_from '{path}' ({what}) does not fit the {name} of train.model's "
                                  f"options, which differ in: {'; '.join(notes) or 'nothing'}") from exc
        if self.ema is not None:
            self.ema = WeightEMA(self.model, self.ema.decay)
        return what, notes

    def inference_model(self) -> torch.nn.Module:
        """The weights to validate and keep: the moving average when the model asks for one."""
        return self.model if self.ema is None else self.ema.model

    def _loss(self, model: torch.nn.Module, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        own = getattr(model, "training_loss", None)
        if own is not None:
            return own(batch.noisy, batch.clean, batch.sr, generator=generator)
        return self.criterion(model(batch.noisy, batch.sr), batch.clean)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.model, batch)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(batch.noisy))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        generator = torch.Generator(device=batch.noisy.device).manual_seed(batch_idx)  # same draws every validation
        self.log(MONITOR, self._loss(self.inference_model(), batch, generator), on_step=False, on_epoch=True,
                 prog_bar=True, batch_size=len(batch.noisy), sync_dist=True)  # all ranks agree on the best

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay,
                                fused=self._fused())
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.optim.lr_step_epochs, gamma=self.optim.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def _fused(self) -> bool:
        """``train.optim.fused``, unless a mixed precision clips gradients: Lightning refuses to clip the gradients
        of an optimiser that unscales them itself (a fused one), so that combination runs the per-tensor AdamW and
        says so."""
        if not self.optim.fused:
            return False
        trainer = self._trainer
        precision = "32" if trainer is None else str(trainer.precision)
        if precision.endswith("-mixed") and self.optim.grad_clip is not None:
            if trainer is not None and trainer.is_global_zero:
                print(f"train: precision {precision} with train.optim.grad_clip: Lightning cannot clip a fused "
                      "optimiser's gradients, so AdamW runs unfused (its last bits then depend on the CPU)")
            return False
        return True


class NonFiniteGradientGuard(L.Callback):
    """Skips an optimiser step whose gradients hold a NaN or an infinity, and stops after ``limit`` in a row.

    Runs after the backward pass and before clipping and the step (``on_before_optimizer_step``): it drops every
    gradient, so AdamW leaves each weight, its moments and its step count as they were (the step still counts in
    ``global_step``, the schedule stays on time). Under data parallelism the gradients are already averaged across
    ranks, so every rank sees the same non-finite values and skips the same steps. Under ``16-mixed`` the gradient
    scaler skips such steps itself (and lowers its scale), so the guard leaves them to it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.skipped = 0
        self.in_a_row = 0

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if str(trainer.precision) == "16-mixed":
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads or bool(torch.stack([g.isfinite().all() for g in grads]).all()):
            self.in_a_row = 0
            return
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None
        self.skipped += 1
        self.in_a_row += 1
        step = trainer.global_step
        if trainer.is_global_zero:
            print(f"train: step {step} (epoch {trainer.current_epoch}) has NaN or infinite gradients: skipped, "
                  f"weights unchanged ({self.in_a_row} in a row, {self.skipped} in all)")
        if self.in_a_row >= self.limit:
            raise NonFiniteTrainingError(
                f"{self.in_a_row} training steps in a row (the last, step {step}) had NaN or infinite gradients "
                f"(train.max_nonfinite_steps = {self.limit}); the weights are those before the first of them. "
                "Lower train.optim.lr, keep train.optim.grad_clip on, or train in precision 32 rather than a mixed one")

    def state_dict(self) -> dict[str, Any]:
        """Kept in a resume checkpoint, so a resumed run reports the skips before the kill."""
        return {"skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped, self.in_a_row = int(state_dict["skipped"]), int(state_dict["in_a_row"])


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
        if not trainer.is_global_zero:
            return  # every rank tracks the best; one writes it
        model = pl_module.inference_model() if isinstance(pl_module, EnhancementModule) else pl_module.model
        save_checkpoint(self.path, model, self.model_name, self.options,
                        step=self.best_step, val_loss=self.best)

    def state_dict(self) -> dict[str, Any]:
        """Kept in a resume checkpoint, so a resumed run compares against the best before the kill."""
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_step = float(state_dict["best"]), int(state_dict["best_step"])


def seed_everything(seed: int, num_threads: int, onednn: bool = False) -> None:
    """Seed python/numpy/torch, fix the thread count, ask torch for deterministic kernels and choose whether its
    CPU LSTMs and convolutions run through oneDNN (``train.onednn``)."""
    L.seed_everything(seed, workers=True, verbose=False)
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.mkldnn.enabled = onednn

"""The ``native`` backend: Lightning + DVCLive, keeping the lowest-validation-loss weights as best.ckpt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curator.training.backends import BACKENDS, NATIVE_BACKEND, TrainJob, screen_job


@BACKENDS.register(NATIVE_BACKEND)
def train_native(job: TrainJob) -> dict[str, Any]:
    """Train ``job.params.model`` for ``max_steps`` steps, validating every ``val_every_steps``."""
    # imported here so that validating params (`curator check`) does not pay for importing Lightning
    import lightning as L
    from dvclive.lightning import DVCLiveLogger

    from curator.training.data import make_loader
    from curator.training.models import model_options, options_dict
    from curator.training.module import (
        BestCheckpoint,
        EnhancementModule,
        NonFiniteGradientGuard,
        seed_everything,
    )
    from curator.training.parallel import ShardSamplers
    from curator.training.resume import ResumeCheckpoint, ResumeState

    p = job.params
    seed_everything(p.seed, p.num_threads, p.onednn)
    options = options_dict(model_options(p.model.name, p.model.options))
    module = EnhancementModule(p.model.name, options, p.loss, p.optim)
    if p.init_from is not None:
        what, differ = module.init_weights(p.init_from)
        if job.launcher_zero:
            print(f"train: weights from train.init_from {p.init_from} ({what})"
                  + (f"; options that differ but fit: {'; '.join(differ)}" if differ else ""))
    rates = sorted({int(sr) for sr in job.train_rows["sr"]} | {int(sr) for sr in job.val_rows["sr"]})
    skipped = screen_job(job, rate_check(module.model, rates))  # before any batch is drawn: same batches every run
    loading = {"pin_memory": p.data.pin_memory, "prefetch_factor": p.data.prefetch_factor,
               "persistent_workers": p.data.persistent_workers}
    train_dl = make_loader(job.train_rows, p.data.crop_seconds, p.data.batch_size, p.seed, True, p.data.num_workers,
                           crop_samples=p.data.crop_samples, mixing=job.mixing, **loading)
    val_dl = make_loader(job.val_rows, p.data.val_crop_seconds, p.data.batch_size, p.seed, False,
                         p.data.num_workers, **loading)
    apply_speed_settings(p, module)
    best = BestCheckpoint(job.best_ckpt, p.model.name, options)
    guard = NonFiniteGradientGuard(p.max_nonfinite_steps)
    callbacks: list[L.Callback] = [best, guard, L.pytorch.callbacks.LearningRateMonitor(logging_interval="step")]
    callbacks.append(ShardSamplers(train_dl.batch_sampler, val_dl.batch_sampler))
    resume = ResumeState(job.exp_dir)
    ckpt_path = None
    if p.resume_every_steps is not None:
        fp = job.config_sha256
        ckpt_path, why = resume.find(fp, mutate=job.launcher_zero)
        if why and job.launcher_zero:
            print(f"train: {why}")
        if ckpt_path is not None and job.launcher_zero:
            resume.restore_outputs(job.best_ckpt, job.live_dir)
        callbacks.append(ResumeCheckpoint(resume, p.resume_every_steps, fp, job.best_ckpt, job.live_dir,
                                          train_dl.batch_sampler))
    # save_dvc_exp=False, dvcyaml=None: safe inside `dvc exp run`, never rewrites dvc.yaml
    logger = DVCLiveLogger(dir=str(job.live_dir), save_dvc_exp=False, dvcyaml=None, report=None,
                           resume=ckpt_path is not None)
    trainer = L.Trainer(
        accelerator=p.accelerator, devices=p.devices, num_nodes=p.num_nodes, strategy=_strategy(p.strategy),
        precision=p.precision, use_distributed_sampler=False,  # the batch sampler shards itself (ShardSamplers)
        max_steps=p.max_steps,
        val_check_interval=p.val_every_steps, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        gradient_clip_val=p.optim.grad_clip, log_every_n_steps=p.log_every_steps, logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False, enable_model_summary=True, default_root_dir=str(job.exp_dir),
    )
    trainer.fit(module, train_dataloaders=train_dl, val_dataloaders=val_dl,
                ckpt_path=None if ckpt_path is None else str(ckpt_path))
    summary = {
        "best_val_loss": best.best, "best_step": best.best_step, "steps": trainer.global_step,
        "skipped_nonfinite_steps": guard.skipped,
        "n_params": sum(t.numel() for t in module.model.parameters()),
        "n_train_utts": len(job.train_rows), "n_val_utts": len(job.val_rows),
    }
    if trainer.is_global_zero:  # only rank 0 writes outputs
        live = logger.experiment
        live.summary.update({**summary, **skipped})
        live.make_summary()
        resume.clear()  # finished: the outputs are whole, a rerun starts afresh
    return {**summary, "skipped_train": skipped["skipped_train"]["n"], "skipped_val": skipped["skipped_val"]["n"]}


def apply_speed_settings(p: Any, module: Any) -> None:
    """``train.cudnn_benchmark``, ``train.matmul_precision`` and ``train.compile`` (compiling ``module.model`` in
    place with ``train.compile_mode``; its parameters, hence checkpoints, are those of the plain model)."""
    import torch

    torch.backends.cudnn.benchmark = p.cudnn_benchmark
    torch.set_float32_matmul_precision(p.matmul_precision)
    if p.compile:
        module.model.compile(mode=p.compile_mode)


def _strategy(name: str) -> Any:
    """The Lightning strategy of ``train.strategy`` (see ``curator.training.params.STRATEGIES``)."""
    if name == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(find_unused_parameters=True)
    return name


def rate_check(model: Any, rates: list[int]) -> Callable[[int], str | None]:
    """Which of ``rates`` the model can run at, found by running it on 0.1 s of silence at each (eval mode, no
    gradient: nothing it holds changes); the returned function gives the model's own reason, or None."""
    import torch

    reasons: dict[int, str | None] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for sr in rates:
            try:
                model(torch.zeros(1, max(sr // 10, 1)), sr)
                reasons[sr] = None
            except ValueError as exc:
                reasons[sr] = str(exc)
    model.train(was_training)
    return lambda sr: reasons.get(sr)

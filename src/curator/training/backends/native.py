"""The ``native`` backend: Lightning + DVCLive, keeping the lowest-validation-loss weights as best.ckpt."""

from __future__ import annotations

from typing import Any

from curator.training.backends import BACKENDS, TrainJob


@BACKENDS.register("native")
def train_native(job: TrainJob) -> dict[str, Any]:
    """Train ``job.params.model`` for ``max_steps`` steps, validating every ``val_every_steps``."""
    # imported here so that validating params (`curator check`) does not pay for importing Lightning
    import lightning as L
    from dvclive.lightning import DVCLiveLogger

    from curator.training.data import make_loader
    from curator.training.models import model_options, options_dict
    from curator.training.module import BestCheckpoint, EnhancementModule, seed_everything

    p = job.params
    seed_everything(p.seed, p.num_threads)
    options = options_dict(model_options(p.model.name, p.model.options))
    module = EnhancementModule(p.model.name, options, p.loss, p.optim)
    train_dl = make_loader(job.train_rows, p.data.crop_seconds, p.data.batch_size, p.seed, True, p.data.num_workers)
    val_dl = make_loader(job.val_rows, p.data.val_crop_seconds, p.data.batch_size, p.seed, False,
                         p.data.num_workers)
    best = BestCheckpoint(job.best_ckpt, p.model.name, options)
    # save_dvc_exp=False, dvcyaml=None: safe inside `dvc exp run`, never rewrites dvc.yaml
    logger = DVCLiveLogger(dir=str(job.live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
    trainer = L.Trainer(
        accelerator=p.accelerator, devices=1, max_steps=p.max_steps,
        val_check_interval=p.val_every_steps, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        gradient_clip_val=p.optim.grad_clip, log_every_n_steps=p.log_every_steps, logger=logger,
        callbacks=[best, L.pytorch.callbacks.LearningRateMonitor(logging_interval="step")],
        enable_checkpointing=False, enable_model_summary=True, default_root_dir=str(job.exp_dir),
    )
    trainer.fit(module, train_dataloaders=train_dl, val_dataloaders=val_dl)
    summary = {
        "best_val_loss": best.best, "best_step": best.best_step, "steps": trainer.global_step,
        "n_params": sum(t.numel() for t in module.model.parameters()),
    }
    live = logger.experiment
    live.summary.update(summary)
    live.make_summary()
    return summary

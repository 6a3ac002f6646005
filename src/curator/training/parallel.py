"""Data parallelism: which process is the launcher's rank 0, and sharding the batch samplers per rank.

Lightning runs ``train.devices x train.num_nodes`` processes (its own launcher re-runs the command for the
other local ranks; torchrun and Slurm start every rank themselves). Every rank runs the train CLI, but only
global rank 0 writes the stage's outputs (``config.yaml``, ``best.ckpt``, the DVCLive folder, the resume state).
Before the Trainer exists the rank comes from the launchers' variables.
"""

from __future__ import annotations

import os

import lightning as L

from curator.training.data import SampleRateBatchSampler

RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")
"""torchrun sets RANK (and LOCAL_RANK, GROUP_RANK); Slurm SLURM_PROCID; Lightning's launcher LOCAL_RANK/NODE_RANK."""


def is_launcher_zero() -> bool:
    """True in the process that is (or will be) global rank 0: no launcher variable names another rank."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


class ShardSamplers(L.Callback):
    """Give each batch sampler this process's rank and the world size once the Trainer knows them."""

    def __init__(self, *samplers: SampleRateBatchSampler) -> None:
        self.samplers = samplers

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for sampler in self.samplers:
            sampler.set_shard(trainer.global_rank, trainer.world_size)

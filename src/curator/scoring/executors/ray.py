"""``ray``: Ray Data ``map_batches`` over the shard list with an actor pool (across the nodes of a cluster).

Each actor builds a :class:`ShardWorker` once (models load once per actor, with the scorers' declared CPUs and
GPUs) and returns every scored shard as Arrow IPC bytes; the driver commits shards and markers, so the work
folder needs no storage shared between nodes. ``score.ray_address`` joins a running cluster; null starts a
local one sized to the workers (or joins ``RAY_ADDRESS`` when that is set) and stops it afterwards. Worker
nodes need the curator package installed (or shipped with a ``runtime_env``).

The actors get the driver's numeric pins (:func:`pinned_runtime_env`): a worker of a running cluster was
started by its own node, not by the pinned score stage, and would otherwise load numpy, OpenBLAS and torch with
its CPU's own kernels (see curator.determinism). They also run at the priority of the node that started them
(``RAY_worker_niceness=0``, as Ray's own job supervisor sets it): Ray starts workers 15 steps nicer than their node,
so on a machine shared with any other work the actors got almost no CPU (the Ray test took 200 s against 14 s
beside two busy cores).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from curator.scoring.executors import EXECUTORS
from curator.scoring.runner import ScoringJob, ShardSummary, ShardTask, ShardWorker, commit_shard


class _ShardActor:
    """One Ray actor: scorers set up once, then one shard per call."""

    def __init__(self, job: ScoringJob, tasks: list[ShardTask]) -> None:
        self.worker = ShardWorker(job)
        self.tasks = {t.index: t for t in tasks}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tables, summaries = [], []
        for index in batch["index"]:
            table, summary = self.worker.score(self.tasks[int(index)])
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            tables.append(sink.getvalue().to_pybytes())
            summaries.append(json.dumps(dataclasses.asdict(summary)))
        return {"index": batch["index"], "table": np.array(tables, dtype=object),
                "summary": np.array(summaries, dtype=object)}


def pinned_runtime_env() -> dict[str, Any]:
    """A Ray ``runtime_env`` that sets, in each actor's process before it starts, the numeric pins and thread
    counts this (pinned) process has: what ``curator.determinism.configure_environment`` would set there."""
    from curator.determinism import ANY_X86_PINS, AVX2_PINS, THREAD_VARIABLES

    names = (*ANY_X86_PINS, *AVX2_PINS, *THREAD_VARIABLES)
    return {"env_vars": {k: os.environ[k] for k in names if k in os.environ}}


def actor_runtime_env() -> dict[str, Any]:
    """The ``runtime_env`` of the scoring actors: the driver's pins, and their node's own priority (a niceness
    increment of 0 in place of Ray's 15; Ray applies the value as an increment to the node's niceness)."""
    env = pinned_runtime_env()
    return {"env_vars": {**env["env_vars"], "RAY_worker_niceness": "0"}}


def _actor_resources(job: ScoringJob) -> dict[str, float]:
    """CPUs and GPUs of one actor: the most any of its scorers declares."""
    res = [s.resources() for s in job.build_scorers()]
    return {"num_cpus": max(r.cpus for r in res), "num_gpus": max(r.gpus for r in res)}


@EXECUTORS.register("ray")
def run_ray(job: ScoringJob, tasks: list[ShardTask], on_done: Callable[[ShardSummary], None],
            workers: int) -> None:
    """Score ``tasks`` with ``workers`` Ray actors; results stream back as shards finish."""
    import ray

    started = False
    if not ray.is_initialized():
        address: Any = job.params.ray_address or os.environ.get("RAY_ADDRESS")
        init_kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            init_kwargs["address"] = address
        else:
            init_kwargs["num_cpus"] = int(workers * job.params.threads_per_worker)
        ray.init(**init_kwargs)
        started = True
    try:
        by_index = {t.index: t for t in tasks}
        ds = ray.data.from_items([{"index": t.index} for t in tasks], override_num_blocks=len(tasks))
        scored = ds.map_batches(_ShardActor, fn_constructor_kwargs={"job": job, "tasks": tasks}, batch_size=1,
                                concurrency=workers, runtime_env=actor_runtime_env(), **_actor_resources(job))
        for row in scored.iter_rows():
            summary = ShardSummary(**json.loads(row["summary"]))
            table = pa.ipc.open_stream(row["table"]).read_all()
            commit_shard(job.work_dir, by_index[int(row["index"])], table, summary)
            on_done(summary)
    finally:
        if started:
            ray.shutdown()

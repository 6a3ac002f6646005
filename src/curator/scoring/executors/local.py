"""``local``: in-process for one worker, else a spawn-context process pool (models load once per process)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

from curator.scoring.executors import EXECUTORS
from curator.scoring.runner import ScoringJob, ShardSummary, ShardTask, ShardWorker

_WORKER: ShardWorker | None = None


def _init(job: ScoringJob) -> None:
    global _WORKER
    _WORKER = ShardWorker(job)


def _score(task: ShardTask) -> ShardSummary:
    assert _WORKER is not None, "worker process was not initialised"
    return _WORKER(task)


@EXECUTORS.register("local")
def run_local(job: ScoringJob, tasks: list[ShardTask], on_done: Callable[[ShardSummary], None],
              workers: int) -> None:
    """Score ``tasks`` on this machine with ``workers`` processes."""
    if workers <= 1:
        worker = ShardWorker(job)
        for task in tasks:
            on_done(worker(task))
        return
    # spawn, not fork: forking a process that already holds torch/onnxruntime thread pools can deadlock
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init,
                             initargs=(job,)) as pool:
        pending = {pool.submit(_score, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
                on_done(future.result())

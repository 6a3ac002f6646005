"""How shards run: ``score.executor`` names one of these (a module each, ``@EXECUTORS.register(name)``).

An executor is ``run(job, tasks, on_done, workers)``: it scores every task with a
:class:`~curator.scoring.runner.ShardWorker` (which writes the shard and its marker) and calls
``on_done(summary)`` in the driver as each shard finishes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curator.registry import Registry

EXECUTORS: Registry[Callable[..., Any]] = Registry("executor", package="curator.scoring.executors")

"""The ray executor (a real 2-CPU local cluster) produces the same table as the local one."""

from __future__ import annotations

from pathlib import Path

import pytest

from curator.contract.scores import write_table
from curator.io import sha256_file
from curator.scoring.runner import score_rows

from .conftest import score_params
from .test_resume import rows_of

LIGHT = {"num_workers": 2, "shard_size": 4, "scorers": "[bandwidth, vad, clipping, sisdr, snr, pesq, embedding]",
         "ref_quality.weights": "{ref_bandwidth_ratio: 1.0}", "loss_proxy.weights": "{in_sisdr: 0.5, in_pesq: 0.5}"}


def test_ray_table_equals_local_table(corpus, tmp_path: Path, monkeypatch):
    ray = pytest.importorskip("ray")
    from curator.scoring.executors import ray as executor

    manifest, _ = corpus
    rows = rows_of(manifest)
    local = score_rows(rows, score_params(**{**LIGHT, "num_workers": 1}), tmp_path / "local")
    handed: list = []
    original = ray.data.Dataset.map_batches

    def recording(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        handed.append(kwargs.get("runtime_env"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ray.data.Dataset, "map_batches", recording)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = score_rows(rows, score_params(**LIGHT, executor="ray"), tmp_path / "ray")
    finally:
        ray.shutdown()
    assert handed == [executor.actor_runtime_env()]  # run_ray hands its actors the driver's pins and priority
    assert handed[0]["env_vars"]["RAY_worker_niceness"] == "0"
    assert [s.index for s in remote.summaries] == list(range(3)) and not any(s.resumed for s in remote.summaries)
    write_table(local.table, tmp_path / "local.parquet", local.settings)
    write_table(remote.table, tmp_path / "ray.parquet", remote.settings)
    assert sha256_file(tmp_path / "local.parquet") == sha256_file(tmp_path / "ray.parquet")


def test_ray_actors_get_the_drivers_pins_on_a_cluster_started_without_them(monkeypatch):
    """A running cluster's workers are started by their node, not by the pinned score stage: the executor hands
    the driver's pins and thread counts to its actors through a ``runtime_env`` (``run_ray`` passes it to
    ``map_batches``: checked in the table test above), so they load numpy, OpenBLAS and torch with the stage's kernels,
    and run at their node's priority rather than Ray's 15 steps nicer (beside two busy cores the table test took
    200 s instead of 14 s)."""
    import ast
    import os

    ray = pytest.importorskip("ray")
    from curator.determinism import AVX2_PINS, THREAD_VARIABLES
    from curator.scoring.executors import ray as executor

    class _EnvProbe:  # defined here: cloudpickle ships it by value to the workers
        """A Ray Data actor that reports the pin variables its process started with."""

        def __call__(self, batch):
            import os

            import numpy as np

            from curator.determinism import AVX2_PINS, THREAD_VARIABLES

            names = sorted({"NPY_DISABLE_CPU_FEATURES", *AVX2_PINS, *THREAD_VARIABLES})
            report = {**{k: os.environ.get(k) for k in names}, "niceness": os.nice(0)}
            return {"env": np.array([repr(report)] * len(batch["i"]), dtype=object)}

    names = ("NPY_DISABLE_CPU_FEATURES", *AVX2_PINS, *THREAD_VARIABLES)
    for k in names:
        monkeypatch.delenv(k, raising=False)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # its workers inherit no pin
    try:
        pins = {"FAISS_SIMD_LEVEL": "AVX2", "OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2"}
        for k, v in pins.items():
            monkeypatch.setenv(k, v)  # the driver pins after the cluster started, as a stage joining one does
        assert executor.pinned_runtime_env() == {"env_vars": pins}
        ds = ray.data.from_items([{"i": 0}])
        bare = ast.literal_eval(ds.map_batches(_EnvProbe, batch_size=1, concurrency=1).take_all()[0]["env"])
        assert bare["FAISS_SIMD_LEVEL"] is None  # without the runtime_env the actor would run unpinned
        driver = os.nice(0)
        assert driver == 19 or bare["niceness"] > driver  # and Ray would start it nicer than its node
        env = ast.literal_eval(ds.map_batches(_EnvProbe, batch_size=1, concurrency=1,
                                              runtime_env=executor.actor_runtime_env()).take_all()[0]["env"])
        assert {k: env[k] for k in pins} == pins
        assert env["niceness"] == driver  # the stage's own priority: beside other work it still gets the CPU
    finally:
        ray.shutdown()

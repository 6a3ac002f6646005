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


def test_ray_table_equals_local_table(corpus, tmp_path: Path):
    ray = pytest.importorskip("ray")
    manifest, _ = corpus
    rows = rows_of(manifest)
    local = score_rows(rows, score_params(**{**LIGHT, "num_workers": 1}), tmp_path / "local")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = score_rows(rows, score_params(**LIGHT, executor="ray"), tmp_path / "ray")
    finally:
        ray.shutdown()
    assert [s.index for s in remote.summaries] == list(range(3)) and not any(s.resumed for s in remote.summaries)
    write_table(local.table, tmp_path / "local.parquet", local.settings)
    write_table(remote.table, tmp_path / "ray.parquet", remote.settings)
    assert sha256_file(tmp_path / "local.parquet") == sha256_file(tmp_path / "ray.parquet")

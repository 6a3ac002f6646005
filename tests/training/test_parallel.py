"""Data parallelism: the sharded sampler, and DDP on 2 CPU processes (gloo) against one process of twice the batch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from curator.training.data import SampleRateBatchSampler
from curator.training.parallel import is_launcher_zero

REPO = Path(__file__).resolve().parents[2]
RATES = np.array([8000] * 7 + [16000] * 9 + [48000] * 2)


def _epoch(sampler: SampleRateBatchSampler, epoch: int) -> list[list[tuple[int, float]]]:
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("world", [2, 3])
def test_shards_are_slices_of_the_single_process_batches(world: int) -> None:
    batch = 2
    whole = SampleRateBatchSampler(RATES, batch * world, seed=3, shuffle=True)
    shards = [SampleRateBatchSampler(RATES, batch, seed=3, shuffle=True) for _ in range(world)]
    for rank, s in enumerate(shards):
        s.set_shard(rank, world)
    for epoch in range(3):
        big = _epoch(whole, epoch)
        parts = [_epoch(s, epoch) for s in shards]
        assert all(len(p) == len(big) == len(s) for p, s in zip(parts, shards, strict=True))
        for i, b in enumerate(big):
            got = [item for p in parts for item in p[i]]
            assert all(len(p[i]) >= 1 for p in parts)  # no rank ever gets an empty batch
            assert len({RATES[j] for j, _ in got}) == 1  # one sampling rate per global batch
            if len(b) >= world:
                assert got == b  # the global batch, split between ranks in order
            else:
                assert set(got) == set(b)  # a batch smaller than the world: rows repeated, none invented


def test_one_process_is_unchanged_by_sharding_code() -> None:
    a = SampleRateBatchSampler(RATES, 4, seed=1, shuffle=True)
    b = SampleRateBatchSampler(RATES, 4, seed=1, shuffle=True)
    b.set_shard(0, 1)
    assert _epoch(a, 0) == _epoch(b, 0)
    with pytest.raises(ValueError, match="rank 2"):
        b.set_shard(2, 2)


def test_launcher_zero_reads_every_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert is_launcher_zero()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")  # Lightning's launcher on the second node
    assert not is_launcher_zero()
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert not is_launcher_zero()


def _run(corpus: dict[str, Path], tmp_path: Path, name: str, overrides: list[str]) -> Path:
    run_dir = tmp_path / name
    run_dir.mkdir()
    cmd = [sys.executable, "-m", "curator.training", "--config", str(corpus["params"]), "--curated_list",
           str(corpus["curated"]), "--models_dir", "models", "--live_dir", "live", "train.max_steps=4",
           "train.val_every_steps=2", "train.num_threads=1", *overrides]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE"):
        env.pop(var, None)
    done = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


def _val_curve(run_dir: Path) -> list[float]:
    with open(run_dir / "live" / "plots" / "metrics" / "val" / "loss.tsv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f, delimiter="\t")]


STEPS, LR = 4, 3.0e-3
"""The runs' steps (``_run``) and the tests' AdamW learning rate (tests/params.yaml ``train.optim.lr``)."""


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_ddp_on_two_cpu_processes_matches_one_process_of_twice_the_batch(corpus: dict[str, Path], tmp_path: Path,
                                                                           precision: str) -> None:
    mode = [] if precision == "32" else [f"train.precision={precision}"]  # "32" is the default
    one = _run(corpus, tmp_path, "one", ["train.data.batch_size=4", *mode])
    two = _run(corpus, tmp_path, "ddp", ["train.data.batch_size=2", "train.devices=2", "train.strategy=ddp", *mode])
    exp = next((one / "models").iterdir()).name
    # rank 0 wrote the outputs, whole, and no rank left anything else behind (resume state, temporaries)
    assert sorted(p.name for p in (two / "models" / exp).iterdir()) == ["best.ckpt", "config.yaml"]
    curve_one, curve_two = _val_curve(one), _val_curve(two)
    assert len(curve_one) == len(curve_two) == 2
    a = torch.load(one / "models" / exp / "best.ckpt", weights_only=True)["state_dict"]
    b = torch.load(two / "models" / exp / "best.ckpt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in b.values() if v.is_floating_point())  # mixed: fp32 weights
    if precision == "32":
        np.testing.assert_allclose(curve_two, curve_one, rtol=1e-4)
        for k, v in a.items():
            torch.testing.assert_close(b[k], v, rtol=1e-4, atol=1e-6, msg=k)
    else:
        # bf16 products (8-bit mantissa) on batches of 2 against 4 round differently. The curves agree to 1e-4
        # (measured); AdamW moves a weight by about lr per step whatever its gradient's size, so a weight whose
        # tiny gradient rounds differently can move up to STEPS x LR apart (measured: 3.3e-3 at most, on 0.008% of
        # the weights more than 1e-3; mean difference 4e-6)
        np.testing.assert_allclose(curve_two, curve_one, rtol=1e-3)
        diff = torch.cat([(b[k] - v).abs().flatten() for k, v in a.items() if v.is_floating_point()])
        assert float(diff.max()) <= STEPS * LR and float(diff.mean()) <= 1e-4
    config = yaml.safe_load((two / "models" / exp / "config.yaml").read_text())["params"]["train"]
    assert config["devices"] == 2 and config["precision"] == precision

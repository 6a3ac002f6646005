"""Kill the stage half-way, rerun: only unfinished shards are recomputed and the table is byte-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest

from curator.contract.manifest import read_manifest
from curator.contract.scores import write_table
from curator.io import sha256_file
from curator.scoring.base import SCORERS, AudioBatch, Scorer, float_columns
from curator.scoring.runner import score_rows

from .conftest import LIGHT, score_params

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

PARAMS = str(TEST_PARAMS)


@SCORERS.register("test_crash")
class CrashingScorer(Scorer):
    """Raises on ``crash_on`` while armed: a worker dying in the middle of a run."""

    name = "test_crash"
    outputs = ("test_len",)
    crash_on: ClassVar[str | None] = None
    calls: ClassVar[list[str]] = []

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        if self.crash_on in batch.utt_ids:
            raise RuntimeError("simulated crash")
        type(self).calls.extend(batch.utt_ids)
        return {"test_len": np.array([len(x) for x in batch.noisy], dtype=np.float64)}


def rows_of(manifest: Path) -> list[dict]:
    df = read_manifest(manifest)
    return [{k: (None if v != v else v) for k, v in r.items()} for r in df.to_dict("records")]


def test_crash_then_resume_recomputes_only_unfinished_shards(corpus, tmp_path: Path, capsys):
    manifest, _ = corpus
    rows = rows_of(manifest)
    params = score_params(**{"num_workers": 1, "shard_size": 3, "scorers": "[bandwidth, sisdr, estoi, pesq, test_crash]",
                             "ref_quality.weights": "{ref_bandwidth_ratio: 1.0}"})
    CrashingScorer.crash_on = "utt0007"  # in shard 2 of 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        score_rows(rows, params, tmp_path / "work")
    assert sorted(p.name for p in (tmp_path / "work").glob("*.done.json")) == [
        "shard-00000-of-00004.done.json", "shard-00001-of-00004.done.json"]

    CrashingScorer.crash_on, CrashingScorer.calls = None, []
    capsys.readouterr()
    resumed = score_rows(rows, params, tmp_path / "work")
    assert [s.resumed for s in resumed.summaries] == [True, True, False, False]
    assert "score: resuming: 2 of 4 shards (6 of 12 utterances) were already scored" in capsys.readouterr().err
    assert sorted(CrashingScorer.calls) == [f"utt{i:04d}" for i in range(6, 12)]

    fresh = score_rows(rows, params, tmp_path / "fresh")
    write_table(resumed.table, tmp_path / "resumed.parquet", resumed.settings)
    write_table(fresh.table, tmp_path / "fresh.parquet", fresh.settings)
    assert sha256_file(tmp_path / "resumed.parquet") == sha256_file(tmp_path / "fresh.parquet")


def test_changed_settings_invalidate_finished_shards(corpus, tmp_path: Path):
    manifest, _ = corpus
    rows = rows_of(manifest)
    light = {"num_workers": 1, "shard_size": 6, "keep_shards": "true", "scorers": "[bandwidth, sisdr, estoi, pesq]",
             "ref_quality.weights": "{ref_bandwidth_ratio: 1.0}"}
    score_rows(rows, score_params(**light), tmp_path / "w")
    assert all(s.resumed for s in score_rows(rows, score_params(**light), tmp_path / "w").summaries)
    again = score_rows(rows, score_params(**light, min_duration_sec=0.25), tmp_path / "w")
    assert not any(s.resumed for s in again.summaries)


def test_sigkill_of_the_cli_then_rerun_matches_an_uninterrupted_run(corpus, tmp_path: Path):
    manifest, _ = corpus
    args = [sys.executable, "-m", "curator.scoring", "--config", PARAMS, f"data.manifest={manifest}",
            "score.num_workers=1", "score.shard_size=1", *LIGHT]
    out = tmp_path / "killed.parquet"
    proc = subprocess.Popen([*args, "--out", str(out), "--metrics", str(tmp_path / "k.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    work = Path(f"{out}.shards")
    deadline = time.monotonic() + 120
    while len(list(work.glob("*.done.json"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(work.glob("*.done.json")))
    assert 3 <= finished < 12 and not out.exists(), "the run must be killed half-way"

    subprocess.run([*args, "--out", str(out), "--metrics", str(tmp_path / "k.json")], check=True,
                   capture_output=True)
    subprocess.run([*args, "--out", str(tmp_path / "clean.parquet"), "--metrics", str(tmp_path / "c.json")],
                   check=True, capture_output=True)
    from curator.io import read_json

    assert read_json(tmp_path / "timings" / "k.json")["shards_resumed"] >= finished  # a run figure, not a metric
    assert sha256_file(out) == sha256_file(tmp_path / "clean.parquet")

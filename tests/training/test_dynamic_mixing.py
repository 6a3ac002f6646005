"""Dynamic mixing (train.data.dynamic_mixing): every epoch draws each row's noise, RIR, SNR and augmentations
afresh from the selected sources, seeded by (train.seed, epoch, row); a training run with it finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from curator.config import load_params, load_section
from curator.contract.manifest import read_manifest
from curator.contract.source_selection import write_selection
from curator.contract.sources import write_sources
from curator.datasets.simulation.from_selection import main as simulate_main
from curator.training import data as D
from curator.training.cli import main as train_main
from curator.training.data import (
    CuratedListError,
    DynamicMixingDataset,
    EpochBatchSampler,
    SampleRateBatchSampler,
    load_dynamic_mixing,
)
from curator.training.resume import RESUME_DIRNAME, STATE

SELECTED_NOISE = {"noise_a", "noise_b", "wind_noise_a"}
LEFT_OUT = {"noise_c", "rir_b"}
SELECTED_RIR = {"rir_a"}
OUT = "curated/sources"
SOURCES = "sources.jsonl"
SELECTION = "selected_sources.csv"


def _speechlike(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220)
    voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    return (0.3 * voiced * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2).astype(np.float32)


def write_pool(root: Path) -> None:
    """Speech at 8 and 16 kHz, three noises, one wind, two RIRs (16 kHz), their manifest, and a selection that
    leaves one noise and one RIR out."""
    rng = np.random.default_rng(0)
    rows = []

    def add(kind: str, uid: str, x: np.ndarray, sr: int, **labels) -> None:
        path = root / "audio" / kind / f"{uid}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x, sr)
        rows.append({"source_id": uid, "kind": kind, "path": path.relative_to(root).as_posix(), "sr": sr,
                     "duration_sec": len(x) / sr, "split": "train", "corpus": "synthetic", "schema_version": 1, **labels})

    for i in range(4):
        sr = (8000, 16000)[i % 2]
        add("speech", f"spk{i % 2}_utt{i}", _speechlike(rng, sr, int(1.2 * sr)), sr, speaker=f"spk{i % 2}",
            language="en", text=f"sentence {i}")
    for uid in ("noise_a", "noise_b", "noise_c"):
        add("noise", uid, rng.normal(0, 0.1, 32000).astype(np.float32), 16000)
    add("wind_noise", "wind_noise_a", np.cumsum(rng.normal(0, 0.01, 32000)).astype(np.float32), 16000)
    for k, uid in enumerate(("rir_a", "rir_b")):
        h = rng.normal(0, 1, 4000) * np.exp(-np.arange(4000) / (400 + 200 * k))
        h[0] = 3.0
        add("rir", uid, (h / np.abs(h).max()).astype(np.float32), 16000)
    write_sources(root / SOURCES, rows)
    keep = [r for r in rows if r["source_id"] not in LEFT_OUT]
    frame = pd.DataFrame({"kind": [r["kind"] for r in keep], "source_id": [r["source_id"] for r in keep],
                          "hours": [r["duration_sec"] / 3600 for r in keep], "reason": "test",
                          "order": range(len(keep)), "slice": "", "in_quota": False})
    write_selection(root / SELECTION, frame, {})


@pytest.fixture
def pool(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The tiny training corpus (its dev manifest validates) plus a source pool, a selection and the pairs
    simulated from it (curated list + sidecar naming the pool); cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    write_pool(tmp_path)
    assert simulate_main(["--config", str(corpus["params"]), "--sources", SOURCES, "--selection", SELECTION,
                          "--out", OUT, "--metrics", "metrics.json", "source_simulate.speech_free_fraction=0.2",
                          "source_simulate.num_workers=1"]) == 0
    return {**corpus, "curated": tmp_path / OUT / "curated_train.csv"}


def _mixing(params: Path, seed: int = 0):
    rows = read_manifest(Path(OUT) / "train.jsonl")
    sim = load_section("simulation", cfg=load_params(str(params)))
    return rows, load_dynamic_mixing(rows, SOURCES, SELECTION, sim, seed)


def test_each_epoch_mixes_the_same_clean_row_afresh_and_a_seed_replays_it(pool):
    rows, mixing = _mixing(pool["params"])
    ds = DynamicMixingDataset(rows, mixing, crop_seconds=0.5)
    i = int(np.flatnonzero(rows["speech_uid"].notna())[0])
    noisy0, clean0, sr = ds[(i, 0.3, 0)]
    assert sr == rows["sr"][i] and len(noisy0) == len(clean0) == int(0.5 * sr)
    again = DynamicMixingDataset(*_mixing(pool["params"]), crop_seconds=0.5)[(i, 0.3, 0)]  # built afresh
    np.testing.assert_array_equal(noisy0, again[0])  # same seed, epoch, row: the same mixture
    np.testing.assert_array_equal(clean0, again[1])
    draws = [ds.draw(i, 0.3, e)[0] for e in range(4)]
    assert len({(d["noise_uid"], d["snr_dB"]) for d in draws}) == 4  # every epoch another noise draw
    for e in range(1, 4):
        assert not np.allclose(ds[(i, 0.3, e)][0], noisy0)
    other_seed = DynamicMixingDataset(rows, _mixing(pool["params"], seed=1)[1], 0.5)[(i, 0.3, 0)]
    assert not np.allclose(other_seed[0], noisy0)
    assert all(d["speech_uid"] == rows["speech_uid"][i] for d in draws)  # always this row's clean speech


def test_draws_come_from_the_selected_sources_only(pool):
    rows, mixing = _mixing(pool["params"])
    assert set(mixing.sources.noise) | set(mixing.sources.wind) == SELECTED_NOISE
    ds = DynamicMixingDataset(rows, mixing, crop_seconds=0.5)
    noise, rirs = set(), set()
    for epoch in range(8):
        for i in range(len(ds)):
            row = ds.draw(i, 0.5, epoch)[0]
            noise.add(row["noise_uid"])
            rirs.add(row["rir_uid"])
    assert noise <= SELECTED_NOISE and len(noise) >= 2
    assert rirs - {"none"} == SELECTED_RIR


def test_speech_free_rows_are_noise_only(pool):
    rows, mixing = _mixing(pool["params"])
    free = np.flatnonzero(rows["speech_uid"].isna())
    assert len(free) == 1  # round(0.2 * 4 / 0.8)
    noisy, clean, _ = DynamicMixingDataset(rows, mixing, crop_seconds=0.5)[(int(free[0]), 0.0, 2)]
    assert not clean.any() and np.abs(noisy).max() > 0


def test_sampler_tags_items_with_their_epoch_and_replays_like_the_plain_one():
    srs = np.array([8000, 16000] * 5)
    tagged, plain = EpochBatchSampler(srs, 2, seed=3, shuffle=True), SampleRateBatchSampler(srs, 2, seed=3, shuffle=True)
    tagged.set_epoch(2)
    plain.set_epoch(2)
    a, b = list(tagged), list(plain)
    assert [[(i, o) for i, o, _ in batch] for batch in a] == b
    assert {e for batch in a for _, _, e in batch} == {2}
    tagged.set_epoch(2)  # a resumed epoch: the same batches after the consumed ones, with the same epoch tag
    tagged.skip_next(2)
    assert list(tagged) == a[2:]


def test_training_with_dynamic_mixing_finishes_on_selected_noise(pool, tmp_path, monkeypatch):
    drawn: list[dict[str, str]] = []
    original = D.DynamicMixingDataset.draw

    def spy(self, idx, offset, epoch):
        out = original(self, idx, offset, epoch)
        drawn.append(out[0])
        return out

    monkeypatch.setattr(D.DynamicMixingDataset, "draw", spy)
    models = tmp_path / "models"
    assert train_main(["--config", str(pool["params"]), "--curated_list", str(pool["curated"]), "--exp.name", "dm",
                       "--models_dir", str(models), "--live_dir", str(tmp_path / "live"),
                       "train.data.dynamic_mixing=true"]) == 0
    assert (models / "dm" / "best.ckpt").is_file()
    frozen = yaml.safe_load((models / "dm" / "config.yaml").read_text())
    assert frozen["dynamic_mixing"]["selection"] == SELECTION
    assert frozen["dynamic_mixing"]["pool"] == {"speech": 4, "noise": 2, "wind_noise": 1, "rir": 1}
    # the mixing settings are a listed param of the stage: recorded (and so part of the resume fingerprint)
    assert frozen["params"]["simulation"] == yaml.safe_load(pool["params"].read_text())["simulation"]
    assert frozen["manifests"]["train"] == f"{OUT}/train.jsonl"
    assert len(drawn) >= 4  # 4 steps of 1-2 rows (5 rows at two rates: 3 batches an epoch)
    assert {r["id"].split("-")[2] for r in drawn} >= {"e0", "e1"}  # the run went into a second epoch's draws
    assert {r["noise_uid"] for r in drawn} <= SELECTED_NOISE
    assert {r["rir_uid"] for r in drawn} <= SELECTED_RIR | {"none"}


def test_dynamic_mixing_errors_are_clear(pool, tmp_path, capsys):
    rows, mixing = _mixing(pool["params"])
    ghost = rows.copy()
    ghost.loc[0, "speech_uid"] = "ghost_utt"
    with pytest.raises(CuratedListError, match="ghost_utt"):
        load_dynamic_mixing(ghost, SOURCES, SELECTION, mixing.sim, 0)
    args = ["--config", str(pool["params"]), "--curated_list", str(pool["curated"]), "--exp.name", "x",
            "--models_dir", str(tmp_path / "m"), "--live_dir", str(tmp_path / "l"), "train.data.dynamic_mixing=true"]
    assert train_main([*args, "train.backend=official"]) == 2
    assert "native backend" in capsys.readouterr().err
    Path(SELECTION).unlink()
    assert train_main(args) == 2
    assert SELECTION in capsys.readouterr().err


def test_a_killed_dynamic_mixing_run_resumes_to_the_same_weights(pool, tmp_path):
    """The mixtures are a function of (seed, epoch, row): a run killed mid-epoch and restarted trains on exactly
    the pairs an uninterrupted run trains on (same final weights)."""
    cfg = yaml.safe_load(pool["params"].read_text())
    cfg["train"].update(max_steps=8, val_every_steps=2, resume_every_steps=2, exp_name="dm_resume")
    cfg["train"]["data"]["dynamic_mixing"] = True  # 5 rows at two rates: 3 batches an epoch, snapshots mid-epoch
    params = tmp_path / "dm_resume.yaml"
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}

    def cmd(run: str) -> list[str]:
        return [sys.executable, "-m", "curator.training", "--config", str(params), "--curated_list",
                str(pool["curated"]), "--models_dir", f"{run}/models", "--live_dir", f"{run}/live"]

    subprocess.run(cmd("whole"), cwd=tmp_path, env=env, check=True, capture_output=True)
    proc = subprocess.Popen(cmd("killed"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "models" / "dm_resume" / RESUME_DIRNAME / STATE
    deadline = time.monotonic() + 300
    while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed half-way"
    step = json.loads(state.read_text())["step"]
    assert 0 < step < 8
    (tmp_path / "killed" / "models" / "dm_resume" / "best.ckpt").unlink(missing_ok=True)
    again = subprocess.run(cmd("killed"), cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert f"(step {step})" in again.stdout
    a, b = (torch.load(tmp_path / run / "models" / "dm_resume" / "best.ckpt", weights_only=True)
            for run in ("whole", "killed"))
    assert a["meta"] == b["meta"]
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k

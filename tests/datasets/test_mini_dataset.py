"""The mini dataset end to end on a tiny profile: determinism, disjoint splits, ground truth, speech-free."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ds_helpers import PARAMS, TINY

from curator.contract.manifest import SPLITS, read_manifest
from curator.datasets.cli import main
from curator.datasets.labels import DISTORTIONS, LANGUAGES
from curator.datasets.mini.build import plant_defect


def _run(cwd: Path, monkeypatch, *extra: str) -> int:
    monkeypatch.chdir(cwd)
    return main(["--dataset_cfg", str(PARAMS), "--data_cfg", str(PARAMS), *extra, *TINY])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny mini dataset built twice in two 'clones': with 2 workers and with 1."""
    mp = pytest.MonkeyPatch()
    roots = []
    for workers in (2, 1):
        root = tmp_path_factory.mktemp(f"clone{workers}")
        assert _run(root, mp, "--stage", "all", f"dataset.num_workers={workers}") == 0
        roots.append(root)
    mp.undo()
    return roots


def test_same_params_give_byte_identical_audio_and_manifests(built):
    a, b = built
    ext = Path("data/external/mini")
    assert (a / ext / "checksums.sha256").read_bytes() == (b / ext / "checksums.sha256").read_bytes()
    files = sorted(p.relative_to(a) for p in (a / "data").rglob("*") if p.is_file())
    assert len(files) > 100
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "metrics/manifest.json").read_bytes() == (b / "metrics/manifest.json").read_bytes()


def test_manifests_are_valid_relative_and_cover_the_vocabulary(built, monkeypatch):
    root = built[0]
    monkeypatch.chdir(root)
    frames = {s: read_manifest(f"data/manifests/mini/{s}.jsonl") for s in SPLITS}
    metrics = json.loads(Path("metrics/manifest.json").read_text())
    for split, df in frames.items():
        assert len(df) == metrics["splits"][split]["utterances"] == {"train": 8, "dev": 4, "test": 4}[split]
        assert metrics["splits"][split]["rejected"] == 0
        assert all(not Path(p).is_absolute() and Path(p).is_file() for p in df["path"])
        assert set(df["distortion"]) <= set(DISTORTIONS)
        assert set(df["language"]) <= {*LANGUAGES, "none"}
        free = df[df["distortion"] == "speech_free"]
        assert len(free) == round(0.25 * len(df)) and set(free["language"]) == {"none"}
    speakers = {s: set(df.loc[df["distortion"] != "speech_free", "speaker"]) for s, df in frames.items()}
    texts = {s: set(df["text"].dropna()) for s, df in frames.items()}
    for s1, s2 in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not speakers[s1] & speakers[s2] and not texts[s1] & texts[s2]


def test_reference_truth_marks_train_defects_only(built):
    rows = list(csv.DictReader((built[0] / "data/external/mini/reference_truth.csv").open()))
    assert list(rows[0]) == ["utt_id", "imperfect", "defect"]
    by_split = {s: [r for r in rows if r["utt_id"].startswith(f"{s}_")] for s in SPLITS}
    train_bad = [r for r in by_split["train"] if r["imperfect"] == "1"]
    assert len(train_bad) == round(0.5 * 6)  # imperfect_fraction 0.5 of the 6 speech utterances
    assert {r["defect"] for r in train_bad} <= {"noise", "reverb", "bandlimit"}
    assert all(r["imperfect"] == "0" and r["defect"] == "none" for s in ("dev", "test") for r in by_split[s])


def test_verify_detects_a_tampered_file(built, tmp_path, monkeypatch, capsys):
    clone = tmp_path / "clone"
    shutil.copytree(built[0] / "data", clone / "data")
    victim = next((clone / "data/external/mini/simulation_dev/clean").rglob("*.flac"))
    victim.write_bytes(victim.read_bytes()[:-100])
    assert _run(clone, monkeypatch, "--stage", "verify", "--report", "verify.json") == 1
    report = json.loads((clone / "verify.json").read_text())
    assert report["checksums"]["mismatched"] == [victim.relative_to(clone / "data/external/mini").as_posix()]
    assert report["dev"]["ok"] is False and not report["ok"]


def test_planted_defects_are_measurable(dataset_params, sim):
    sr = 16000
    rng = np.random.default_rng(0)
    x = np.zeros(sr * 2, np.float32)
    x[sr // 2 : sr] = np.sin(2 * np.pi * 300 * np.arange(sr // 2) / sr)
    noisy = plant_defect(x, sr, "noise", dataset_params.mini, sim, rng)
    assert np.abs(noisy[: sr // 4]).max() > 1e-3  # a noise floor where the clean reference was silent
    reverb = plant_defect(x, sr, "reverb", dataset_params.mini, sim, rng)
    assert np.abs(reverb[sr + sr // 20 : sr + sr // 10]).max() > 1e-3  # a tail after the speech stopped
    white = rng.standard_normal(sr).astype(np.float32)
    limited = plant_defect(white, sr, "bandlimit", dataset_params.mini, sim, rng)
    spec = np.abs(np.fft.rfft(limited)) ** 2
    f = np.fft.rfftfreq(sr, 1 / sr)
    assert spec[f > 5600].sum() / spec.sum() < 0.01  # every defect rate below 16 kHz has Nyquist <= 5.5 kHz


def test_cli_rejects_unknown_datasets_and_keys(tmp_path, monkeypatch, capsys):
    assert _run(tmp_path, monkeypatch, "--stage", "manifest", "data.dataset=minni") == 2
    assert "'data.dataset' = 'minni' is not valid; choose one of: mini, urgent2026, folder" in capsys.readouterr().err
    assert _run(tmp_path, monkeypatch, "--stage", "manifest", "dataset.mini.n_trian=3") == 2
    assert "did you mean 'n_train'" in capsys.readouterr().err
    assert _run(tmp_path, monkeypatch, "--stage", "manifest", "dataset.mini.sample_rates=[11000]") == 2
    assert "dataset.mini.sample_rates" in capsys.readouterr().err

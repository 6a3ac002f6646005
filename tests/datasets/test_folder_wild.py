"""A folder of audio "in the wild" through prepare and manifest: what a new user's tree holds besides good pairs.

Each case is something a first import of one's own data met: a root whose own path contains ``/noisy/``, broken
links and hidden files the glob matches or skips, audio the globs leave out, file names that look like labels,
pairs at two rates or of two lengths, a 0-byte file, noisy files without a clean partner. Each must be imported
right, or counted and named in the stage's JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from curator.datasets.cli import main as datasets_main

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SR = 16000


def _tone(seconds: float = 0.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def _write(path: Path, x: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr)


def _pair(root: Path, rel: str, noisy: np.ndarray | None = None, clean: np.ndarray | None = None,
          clean_sr: int = SR) -> None:
    """``root/train/noisy/<rel>`` and ``root/train/clean/<rel>``."""
    _write(root / "train" / "noisy" / rel, _tone() if noisy is None else noisy)
    _write(root / "train" / "clean" / rel, _tone(seed=1) if clean is None else clean, clean_sr)


@pytest.fixture(scope="module")
def wild(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree whose root lies under a folder named ``noisy`` (the pairing rule must not rewrite it)."""
    root = tmp_path_factory.mktemp("wild") / "noisy" / "corpus"
    _pair(root, "a.wav")
    _pair(root, "noise/clip_0000.wav")  # a folder label, and a file name that merely looks like one
    _pair(root, "clip_0001.wav")
    _pair(root, "packet_loss.wav")  # a whole file name that is a label
    _pair(root, "rates.wav", clean=_tone(seed=1), clean_sr=48000)
    _pair(root, "short.wav", clean=_tone(seed=1)[:-1])
    _write(root / "train" / "noisy" / "alone.wav", _tone())  # no clean partner
    (root / "train" / "noisy" / "zero.wav").write_bytes(b"")
    _write(root / "train" / "clean" / "zero.wav", _tone())
    os.symlink(root / "train" / "noisy" / "gone.wav", root / "train" / "noisy" / "broken.wav")
    _write(root / "train" / "noisy" / ".hidden.wav", _tone())
    _write(root / "train" / "noisy" / "LOUD.WAV", _tone())
    _write(root / "train" / "noisy" / "other.flac", _tone())
    loud = root / "train" / "noisy" / "hot.wav"  # float audio peaking at 3.04: kept, but counted and named
    _pair(root, "hot.wav")
    sf.write(str(loud), _tone() * (3.04 / 0.31), SR, subtype="FLOAT")
    return root


def _run(work: Path, root: Path, stage: str) -> int:
    cfg = yaml.safe_load(TEST_PARAMS.read_text())
    cfg["data"].update(dataset="folder", root=str(work / "data"))
    cfg["dataset"].update(num_workers=1, audio_check="decode")
    cfg["dataset"]["folder"].update(root=str(root), globs={"train": "train/noisy/**/*.wav", "dev": None,
                                                           "test": None})
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return datasets_main(["--dataset_cfg", str(params), "--data_cfg", str(params), "--stage", stage,
                          "--metrics", str(work / "manifest.json")])


@pytest.fixture(scope="module")
def imported(wild: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    work = tmp_path_factory.mktemp("work")
    assert _run(work, wild, "prepare") == 0
    listing = json.loads((work / "data" / "external" / "folder" / "listing.json").read_text())
    assert _run(work, wild, "manifest") == 0
    return work, listing, json.loads((work / "manifest.json").read_text())["splits"]["train"]


def _rows(work: Path) -> dict[str, dict]:
    path = work / "data" / "manifests" / "folder" / "train.jsonl"
    return {r["utt_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_the_pairing_rule_rewrites_the_path_below_the_root_only(imported, wild: Path):
    work, listing, _ = imported
    assert "/noisy/" in f"{wild}/"  # the root itself lies under a folder named noisy
    rows = _rows(work)
    assert rows["train-noisy-a"]["clean_path"] == str(wild / "train" / "clean" / "a.wav")
    assert listing["splits"]["train"]["paired"] == 8  # a, noise/clip_0000, clip_0001, packet_loss, rates, short, zero, hot


def test_distortion_labels_come_from_folder_names_not_file_names(imported):
    rows = _rows(imported[0])
    assert rows["train-noisy-noise-clip_0000"]["distortion"] == "noise"
    assert rows["train-noisy-clip_0001"]["distortion"] != "clipping"  # a clip, not a clipped file
    assert rows["train-noisy-packet_loss"]["distortion"] == "packet_loss"


def test_files_the_glob_matches_or_skips_are_counted_and_named(imported, capsys):
    _, listing, split = imported
    skipped = listing["splits"]["train"]["skipped"]
    assert skipped["by_reason"] == {"broken_link": 1, "hidden_file": 1}
    assert split["rejected_by_reason"]["broken_link"] == 1 and split["rejected_by_reason"]["hidden_file"] == 1
    named = {r["reason"]: r["path"] for r in split["rejected_examples"]}
    assert named["broken_link"].endswith("broken.wav") and named["hidden_file"].endswith(".hidden.wav")
    # audio under the root that no glob matched (case-sensitive suffix, another format) is counted in the listing
    assert listing["unmatched_audio"] == {"n": 2, "examples": ["train/noisy/LOUD.WAV", "train/noisy/other.flac"]}


def test_mismatched_pairs_and_empty_files_get_the_right_reason(imported):
    split = imported[2]
    by_id = {r["utt_id"]: r for r in split["rejected_examples"]}
    assert by_id["train-noisy-rates"]["reason"] == "clean_sr_mismatch"
    assert "(16000 Hz) vs" in by_id["train-noisy-rates"]["path"] and "(48000 Hz)" in by_id["train-noisy-rates"]["path"]
    short = by_id["train-noisy-short"]
    assert short["reason"] == "clean_length_mismatch" and "noisy/short.wav (8000 samples) vs" in short["path"]
    assert by_id["train-noisy-zero"]["reason"] == "empty"  # a 0-byte file, not a corrupt one


def test_rows_without_a_clean_target_are_counted(imported):
    split = imported[2]
    assert split["without_target"]["n"] == 1 and split["without_target"]["not_speech_free"] == 1
    assert _rows(imported[0])["train-noisy-alone"]["clean_path"] is None


def test_float_files_above_full_scale_are_kept_counted_and_named(imported):
    split = imported[2]
    loud = split["over_full_scale"]
    assert loud["n"] == 1 and loud["max_peak_file"].endswith("train/noisy/hot.wav")
    peak = float(np.abs(sf.read(loud["max_peak_file"], dtype="float32")[0]).max())
    assert loud["max_peak"] == pytest.approx(peak, abs=1e-3) and peak > 2.5
    assert "train-noisy-hot" in _rows(imported[0])


def test_a_root_that_pairs_nothing_warns(wild: Path, tmp_path: Path, capsys):
    cfg_root = wild.parent.parent / "flat"
    _write(cfg_root / "train" / "noisy" / "x.wav", _tone())
    assert _run(tmp_path, cfg_root, "prepare") == 0
    assert "no train file has a clean partner" in capsys.readouterr().err


def test_verify_failure_says_what_to_run(wild: Path, tmp_path: Path, capsys):
    assert _run(tmp_path, wild, "verify") == 1
    err = capsys.readouterr().err
    assert "run `--stage manifest` to build the manifest without them" in err

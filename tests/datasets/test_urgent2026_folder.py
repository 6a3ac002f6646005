"""The urgent2026 and folder datasets through the CLI: import, builtin and official simulation, verify."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from ds_helpers import PARAMS, UTTS, speech_like, write_official_layout, write_wav

from curator.contract.manifest import read_manifest
from curator.datasets import recipes
from curator.datasets.cli import main
from curator.datasets.simulation.official import official_commands


def _cli(*args: str) -> int:
    return main(["--dataset_cfg", str(PARAMS), "--data_cfg", str(PARAMS), *args])


def _urgent(root: Path) -> list[str]:
    return ["data.dataset=urgent2026", f"dataset.urgent2026.root={root}", "data.root=m"]


def test_urgent2026_import_only(tmp_path, monkeypatch):
    root = tmp_path / "official"
    write_official_layout(root)
    monkeypatch.chdir(tmp_path)
    args = [*_urgent(root), "dataset.urgent2026.lists.dev=null", "dataset.urgent2026.meta_tsv.dev=null"]
    assert _cli("--stage", "all", *args) == 0
    train = read_manifest("m/manifests/urgent2026/train.jsonl")
    assert len(train) == len(UTTS) and read_manifest("m/manifests/urgent2026/dev.jsonl").empty
    assert train["path"].str.startswith("official/simulation_train/noisy/").all()  # inside the cwd: relative
    truth = Path("m/external/urgent2026/reference_truth.csv").read_text()
    assert truth == "utt_id,imperfect,defect\n"
    (root / "simulation_train/noisy/0/fileid_2.flac").write_bytes(b"broken")
    assert _cli("--stage", "verify", *args) == 1
    assert _cli("--stage", "manifest", *args) == 0
    assert len(read_manifest("m/manifests/urgent2026/train.jsonl")) == len(UTTS) - 1


def test_urgent2026_missing_lists_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", *_urgent(tmp_path / "nowhere")) == 2
    assert "wav.scp' does not exist" in capsys.readouterr().err


def _write_sources(root: Path) -> None:
    lines = {"speech": [], "noise": [], "wind": [], "rir": [], "utt2spk": [], "text": [], "utt2lang": []}
    for i, fs in enumerate((16000, 24000, 48000, 8000)):
        write_wav(root / f"speech/s{i}.wav", speech_like(fs, 1.0, seed=i), fs)
        lines["speech"].append(f"cv_de_{i} {fs} speech/s{i}.wav")
        lines["utt2spk"].append(f"cv_de_{i} spk{i}")
        lines["text"].append(f"cv_de_{i} guten tag {i}")
    bad = speech_like(16000, 1.0)
    bad[50:60] = np.nan
    write_wav(root / "speech/nan.wav", bad, 16000, subtype="FLOAT")
    lines["speech"].append("cv_de_nan 16000 speech/nan.wav")
    rng = np.random.default_rng(0)
    write_wav(root / "noise/n0.wav", 0.1 * rng.standard_normal(48000).astype(np.float32), 48000)
    lines["noise"].append("dns_0 48000 noise/n0.wav")
    rir = np.zeros(4800, np.float32)
    rir[10], rir[900] = 1.0, 0.3
    write_wav(root / "rir/r0.wav", rir, 48000)
    lines["rir"].append("rir_0 48000 rir/r0.wav")
    for name, content in lines.items():
        (root / f"{name}.scp").write_text("\n".join(content) + "\n")


def test_urgent2026_builtin_simulation_of_official_source_lists(tmp_path, monkeypatch):
    root = tmp_path / "src"
    _write_sources(root)
    monkeypatch.chdir(tmp_path)
    args = [*_urgent(root), "dataset.urgent2026.simulate.mode=builtin", "dataset.urgent2026.lists.dev=null",
            "dataset.urgent2026.sources.speech=[speech.scp]", "dataset.urgent2026.sources.noise=[noise.scp]",
            "dataset.urgent2026.sources.rir=[rir.scp]", "dataset.urgent2026.sources.utt2spk=[utt2spk.scp]",
            "dataset.urgent2026.sources.text=[text.scp]", "dataset.num_workers=1"]
    assert _cli("--stage", "all", *args) == 0
    train = read_manifest("m/manifests/urgent2026/train.jsonl")
    assert sorted(train["sr"]) == [8000, 16000, 24000, 48000]  # the NaN source is left out, not a crash
    failed = Path("m/external/urgent2026/simulation_train/log/failed").read_text()
    assert failed.count("\n") == 1 and "NaN" in failed
    assert set(train["language"]) == {"de"}  # no utt2lang: the 'de' token of the uids
    assert train["path"].str.startswith("m/external/urgent2026/simulation_train/noisy/").all()


FAKE_GENERATE = """
import argparse, pathlib
ap = argparse.ArgumentParser(); ap.add_argument('--config'); ap.add_argument('--output_dir'); ap.add_argument('--log_dir')
a = ap.parse_args()
log = pathlib.Path(a.log_dir); log.mkdir(parents=True)
cols = 'id noisy_path speech_uid speech_sid clean_path noise_uid snr_dB rir_uid augmentation fs length text'.split()
row = ['fileid_1', a.output_dir + '/noisy/0/fileid_1.wav', 'cv_fr_1', 'spk', a.output_dir + '/clean/0/fileid_1.wav',
       'n1', '3.0', 'none', 'clipping(min=0.01,max=0.95)', '16000', '16000', 'bonjour']
(log / 'meta.tsv').write_text('\\t'.join(cols) + '\\n' + '\\t'.join(row) + '\\n')
"""
FAKE_SIMULATE = """
import argparse, pathlib, numpy as np, soundfile as sf
ap = argparse.ArgumentParser()
for k in ('--config', '--output_dir', '--log_dir', '--meta_tsv', '--nj', '--chunksize', '--highpass'): ap.add_argument(k)
a = ap.parse_args()
for kind in ('noisy', 'clean'):
    p = pathlib.Path(a.output_dir) / kind / '0' / 'fileid_1.wav'; p.parent.mkdir(parents=True)
    sf.write(p, 0.1 * np.sin(np.arange(16000) / 5.0), 16000)
"""


def test_urgent2026_official_simulation_runs_the_checkout_scripts(tmp_path, monkeypatch):
    repo = tmp_path / "third_party" / "urgent2026_challenge_track1"
    (repo / "simulation").mkdir(parents=True)
    (repo / "conf").mkdir()
    (repo / "conf/simulation_train.yaml").write_text("seed: 0\n")
    (repo / "simulation/generate_data_param.py").write_text(FAKE_GENERATE)
    (repo / "simulation/simulate_data_from_param.py").write_text(FAKE_SIMULATE)
    monkeypatch.chdir(tmp_path)
    args = [*_urgent(tmp_path), "dataset.urgent2026.simulate.mode=official", f"dataset.urgent2026.simulate.python={sys.executable}",
            "dataset.urgent2026.lists.dev=null"]
    assert _cli("--stage", "all", *args) == 0
    train = read_manifest("m/manifests/urgent2026/train.jsonl")
    assert list(train["distortion"]) == ["clipping"] and list(train["language"]) == ["fr"]
    assert train["path"][0] == "m/external/urgent2026/simulation_train/noisy/0/fileid_1.wav"


def test_official_highpass_flag_is_only_passed_when_wanted():
    off = official_commands("python", Path("r"), Path("c.yaml"), Path("/o"), 4, highpass=False)
    on = official_commands("python", Path("r"), Path("c.yaml"), Path("/o"), 4, highpass=True)
    assert "--highpass" not in off[1] and on[1][-2:] == ["--highpass", "True"]
    assert off[0][:2] == ["python", "simulation/generate_data_param.py"]


def test_official_checkout_missing_names_what_to_do(tmp_path, monkeypatch, capsys):
    write_official_layout(tmp_path / "o")
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", *_urgent(tmp_path / "o"), "dataset.urgent2026.simulate.mode=official") == 2
    assert "official checkout not found" in capsys.readouterr().err


def _folder_tree(root: Path) -> None:
    for rel, fs in (("train/noisy/de/a_reverb_1.wav", 16000), ("train/noisy/en/b.wav", 8000),
                    ("train/noisy/clip/c.wav", 16000), ("dev/noisy/x.wav", 16000)):
        x = speech_like(fs, 0.5)
        write_wav(root / rel, x, fs)
        if "b.wav" not in rel:
            write_wav(root / rel.replace("/noisy/", "/clean/"), x, fs)
    write_wav(root / "train/noisy/en/silent.wav", np.zeros(4000, np.float32), 8000)


def test_folder_dataset_pairs_and_labels_from_paths(tmp_path, monkeypatch):
    _folder_tree(tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    args = ["data.dataset=folder", "dataset.folder.root=tree", "data.root=m"]
    assert _cli("--stage", "prepare", *args) == 0
    assert _cli("--stage", "manifest", *args) == 0
    train = read_manifest("m/manifests/folder/train.jsonl").set_index("utt_id")
    assert list(train.index) == ["train-noisy-clip-c", "train-noisy-de-a_reverb_1", "train-noisy-en-b"]
    assert train.loc["train-noisy-de-a_reverb_1", ["language", "distortion"]].tolist() == ["de", "reverb"]
    assert train.loc["train-noisy-clip-c", "distortion"] == "clipping"
    assert pd.isna(train.loc["train-noisy-en-b", "clean_path"])  # no clean file: no target
    assert train.loc["train-noisy-clip-c", "clean_path"] == "tree/train/clean/clip/c.wav"
    metrics = json.loads(Path("metrics/manifest.json").read_text())
    assert metrics["splits"]["train"]["rejected_by_reason"] == {"silent": 1}
    assert read_manifest("m/manifests/folder/test.jsonl").empty


def test_folder_reports_unreadable_folders(tmp_path, monkeypatch):
    _folder_tree(tmp_path / "tree")
    real_walk = os.walk

    def walk(top, onerror=None, **kw):
        if onerror is not None:
            onerror(PermissionError(13, "Permission denied", str(Path(top) / "locked")))
        return real_walk(top, onerror=onerror, **kw)

    monkeypatch.setattr(recipes.folder.os, "walk", walk)
    monkeypatch.chdir(tmp_path)
    args = ["data.dataset=folder", "dataset.folder.root=tree", "data.root=m"]
    assert _cli("--stage", "manifest", *args) == 0
    metrics = json.loads(Path("metrics/manifest.json").read_text())
    assert metrics["splits"]["train"]["rejected_by_reason"]["unreadable_folder"] == 1


def test_folder_without_matches_is_a_clear_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", "data.dataset=folder", "dataset.folder.root=empty") == 2
    assert "no audio under 'empty' matches dataset.folder.globs" in capsys.readouterr().err

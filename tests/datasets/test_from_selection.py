"""Simulating the training pairs from a source selection, through the CLI, on a tiny mini build: only the
selected sources are drawn, the bytes are deterministic, the curated list points training at its manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from ds_helpers import PARAMS, TINY

from curator.audio import audio_info
from curator.contract.curated import LEADING, read_meta
from curator.contract.manifest import read_manifest
from curator.contract.source_selection import write_selection
from curator.contract.sources import read_sources, write_sources
from curator.datasets.cli import main as datasets_main
from curator.datasets.kaldi import read_kv, read_meta_tsv, read_source_lists
from curator.datasets.simulation.from_selection import main as simulate_main
from curator.training.cli import main as train_main

OUT = "data/curated/sources"
SOURCES = "data/manifests/mini/sources.jsonl"
SELECTION = "data/curated/source_selection/selected_sources.csv"
LEFT_OUT = {("speech", "mini_train_en_00001"), ("rir", "rir_train_01")}
KEPT_NOISE = "noise_train_coloured_00"
"""The one ordinary noise clip selected (the other three are left out)."""
SIM = ["source_simulate.speech_free_fraction=0.25"]


def write_source_manifest(root: Path) -> Path:
    """The mini build's train source lists as a source manifest (what the sources stage writes)."""
    ext = Path("data/external/mini")
    lists = root / ext / "sources" / "train"
    spk, text, lang = (read_kv(lists / n) for n in ("utt2spk", "text", "utt2lang"))
    rows = []
    for kind, name in (("speech", "speech.scp"), ("noise", "noise.scp"), ("wind_noise", "wind_noise.scp"),
                       ("rir", "rirs.scp")):
        for uid, e in read_source_lists([lists / name]).items():
            sr, frames, _ = audio_info(root / ext / e.path)
            rows.append({"source_id": uid, "kind": kind, "path": (ext / e.path).as_posix(), "sr": e.fs,
                         "duration_sec": frames / sr, "split": "train", "corpus": "mini", "speaker": spk.get(uid),
                         "language": lang.get(uid, "unknown"), "text": text.get(uid), "schema_version": 1})
    out = root / SOURCES
    write_sources(out, rows)
    return out


def write_selection_csv(root: Path, path: str, keep) -> pd.DataFrame:
    df = read_sources(root / SOURCES)
    df = df[[keep(k, s) for k, s in zip(df["kind"], df["source_id"], strict=True)]]
    frame = pd.DataFrame({"kind": df["kind"], "source_id": df["source_id"], "hours": df["duration_sec"] / 3600,
                          "reason": "test", "order": range(len(df)), "slice": "", "in_quota": False})
    write_selection(root / path, frame, {"config": {}})
    return frame


def _keep(kind: str, sid: str) -> bool:
    if (kind, sid) in LEFT_OUT:
        return False
    return kind != "noise" or sid == KEPT_NOISE


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny mini build with its source manifest and a selection; the simulation run twice (2 workers, then 1),
    the first run's files kept in ``first``."""
    root = tmp_path_factory.mktemp("fromsel")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    assert datasets_main(["--dataset_cfg", str(PARAMS), "--data_cfg", str(PARAMS), "--stage", "all", *TINY]) == 0
    write_source_manifest(root)
    write_selection_csv(root, SELECTION, _keep)
    args = ["--config", str(PARAMS), "--sources", SOURCES, "--selection", SELECTION, "--out", OUT]
    assert simulate_main([*args, "--metrics", "metrics/a.json", *SIM, "source_simulate.num_workers=2"]) == 0
    shutil.copytree(root / OUT, root / "first")
    assert simulate_main([*args, "--metrics", "metrics/b.json", *SIM, "source_simulate.num_workers=1"]) == 0
    mp.undo()
    return root


def test_only_selected_sources_are_drawn(built):
    rows = read_manifest(built / OUT / "train.jsonl")
    selected = pd.read_csv(built / SELECTION, dtype=str)
    pool = {k: set(selected.loc[selected["kind"] == k, "source_id"]) for k in ("speech", "noise", "wind_noise", "rir")}
    speech = rows["speech_uid"].dropna()
    assert sorted(speech) == sorted(pool["speech"])  # every selected utterance simulated once
    assert set(rows["noise_id"]) <= pool["noise"] | pool["wind_noise"]
    assert set(rows["rir_id"].dropna()) <= pool["rir"]
    used = set(speech) | set(rows["noise_id"]) | set(rows["rir_id"].dropna())
    assert not used & {sid for _, sid in LEFT_OUT}
    assert not used & {"noise_train_babble_00", "noise_train_hum_00", "noise_train_transient_00"}
    # the draws log agrees (failed rows included): nothing outside the selection was planned either
    meta = read_meta_tsv(built / OUT / "log" / "meta.tsv")
    assert {m["noise_uid"] for m in meta.values()} <= pool["noise"] | pool["wind_noise"]
    assert {m["rir_uid"] for m in meta.values()} - {"none"} <= pool["rir"]
    # 5 speech rows + round(0.25 * 5 / 0.75) = 2 speech-free rows, each with its audio where the manifest says
    assert len(rows) == 7 and rows["speech_uid"].isna().sum() == 2
    assert rows.loc[rows["speech_uid"].isna(), "clean_path"].notna().all()
    for path, sr, dur in zip(rows["path"], rows["sr"], rows["duration_sec"], strict=True):
        assert path.startswith(f"{OUT}/audio/noisy/")
        file_sr, frames, _ = audio_info(built / path)
        assert file_sr == sr and frames == round(dur * sr)
    metrics = json.loads((built / "metrics/b.json").read_text())
    assert metrics["pairs"] == 7 and metrics["speech_free_pairs"] == 2 and metrics["failures"]["n"] == 0
    assert metrics["sources_selected"] == {"speech": 5, "noise": 1, "wind_noise": 1, "rir": 1}
    assert metrics["sources_used"]["speech"] == 5 and metrics["sources_used"]["noise"] == 1
    assert metrics["hours"] == pytest.approx(rows["duration_sec"].sum() / 3600, abs=1e-6)


def test_same_inputs_give_the_same_bytes_whatever_the_workers(built):
    first = sorted(p.relative_to(built / "first") for p in (built / "first").rglob("*") if p.is_file())
    second = sorted(p.relative_to(built / OUT) for p in (built / OUT).rglob("*") if p.is_file())
    assert first == second and len(first) > 14
    for rel in first:
        assert (built / "first" / rel).read_bytes() == (built / OUT / rel).read_bytes(), rel
    assert (built / "metrics/a.json").read_bytes() == (built / "metrics/b.json").read_bytes()
    assert not list(built.glob("data/curated/.sources.*"))  # the build folder was swapped in


def test_curated_list_names_its_manifest(built):
    csv = built / OUT / "curated_train.csv"
    df = pd.read_csv(csv, dtype={"utt_id": str})
    assert tuple(df.columns[: len(LEADING)]) == LEADING
    rows = read_manifest(built / OUT / "train.jsonl")
    assert df["utt_id"].tolist() == rows["utt_id"].tolist()
    assert all(u.startswith("sources_fileid_") for u in df["utt_id"])
    assert set(df["reason"]) == {"source_selection"} and df["order"].tolist() == list(range(1, len(df) + 1))
    assert df["hours"].sum() == pytest.approx(rows["duration_sec"].sum() / 3600)
    meta = read_meta(csv)
    assert meta["manifest"] == f"{OUT}/train.jsonl"
    assert meta["sources"] == SOURCES and meta["selection"] == SELECTION
    assert meta["n_selected"] == len(df)


def test_bad_selection_is_a_clear_error(built, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(built)
    bad = "data/curated/source_selection/bad.csv"
    frame = pd.DataFrame({"kind": ["speech", "noise"], "source_id": ["mini_train_fr_00000", "no_such_noise"],
                          "hours": [0.001, 0.001], "reason": "test", "order": [0, 1], "slice": "", "in_quota": False})
    write_selection(built / bad, frame, {})
    out = str(tmp_path / "out")
    args = ["--config", str(PARAMS), "--sources", SOURCES, "--out", out, "--metrics", str(tmp_path / "m.json")]
    assert simulate_main([*args, "--selection", bad]) == 2
    assert "noise:no_such_noise" in capsys.readouterr().err
    write_selection(built / bad, frame.iloc[:1], {})  # speech only: nothing to mix it with
    assert simulate_main([*args, "--selection", bad]) == 2
    assert "keeps no noise source" in capsys.readouterr().err
    (built / bad).with_name("bad_meta.json").unlink()
    assert simulate_main([*args, "--selection", bad]) == 2
    assert "sidecar" in capsys.readouterr().err
    assert not Path(out).exists()


def test_training_reads_the_manifest_the_sidecar_names(built, tmp_path, monkeypatch):
    monkeypatch.chdir(built)
    cfg = yaml.safe_load(PARAMS.read_text())
    cfg["train"].update(max_steps=2, val_every_steps=2, log_every_steps=1)
    cfg["train"]["model"]["options"].update(num_channels=8, num_layers=1)
    cfg["train"]["data"].update(crop_seconds=0.5, batch_size=2, max_val_utts=2)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert train_main(["--config", str(params), "--curated_list", f"{OUT}/curated_train.csv", "--exp.name", "src",
                       "--models_dir", str(tmp_path / "models"), "--live_dir", str(tmp_path / "live")]) == 0
    frozen = yaml.safe_load((tmp_path / "models" / "src" / "config.yaml").read_text())
    assert frozen["manifests"]["train"] == f"{OUT}/train.jsonl"
    assert frozen["curated_list"]["n_utts"] == 7
    assert (tmp_path / "models" / "src" / "best.ckpt").is_file()

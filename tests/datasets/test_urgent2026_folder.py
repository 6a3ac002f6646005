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


NO_HOLDOUT = ["dataset.urgent2026.holdout.dev=0", "dataset.urgent2026.holdout.test=0"]
"""Train only: no split held out of the train folder."""


def test_urgent2026_import_only(tmp_path, monkeypatch):
    root = tmp_path / "official"
    write_official_layout(root)
    monkeypatch.chdir(tmp_path)
    args = [*_urgent(root), "dataset.urgent2026.lists.dev=null", "dataset.urgent2026.meta_tsv.dev=null", *NO_HOLDOUT]
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
            "dataset.urgent2026.sources.text=[text.scp]", "dataset.num_workers=1", *NO_HOLDOUT]
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
            "dataset.urgent2026.lists.dev=null", *NO_HOLDOUT]
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


# ------------------------------------------------------------------ one official folder: hold-out, discovery

CODES = ("eng", "deu", "spa", "fra", "zho", "cmn")
"""ISO 639-2/3 codes as the official utt2lang writes them (``cmn``: some Mandarin corpora)."""


def write_speaker_layout(root: Path, n_speakers: int = 10, per_speaker: int = 2, lists: str = "data/train_simulation",
                         sim: str = "simulation_train", meta: str | None = None, prefix: str = "fileid",
                         codes: tuple[str, ...] = CODES, speech_free: int = 1) -> list[str]:
    """An official simulated folder: ``n_speakers`` x ``per_speaker`` utterances plus ``speech_free`` noise-only
    rows (speaker ``none``), 8 kHz, lists in ``root/lists`` and the log in ``root/meta`` (default: as the official
    simulation writes it, ``<sim>/log/meta.tsv``). Returns the utt ids."""
    tables: dict[str, list[str]] = {k: [] for k in ("wav.scp", "spk1.scp", "utt2fs", "utt2spk", "text", "utt2lang",
                                                    "speech_length.scp")}
    log = ["\t".join(("id", "noisy_path", "speech_uid", "speech_sid", "clean_path", "noise_uid", "snr_dB", "rir_uid",
                      "augmentation", "fs", "length", "text"))]
    fs, ids = 8000, []
    for i in range(n_speakers * per_speaker + speech_free):
        uid, free = f"{prefix}_{i}", i >= n_speakers * per_speaker
        spk, code = ("none", "eng") if free else (f"spk{i // per_speaker}", codes[(i // per_speaker) % len(codes)])
        clean = np.zeros(4000, np.float32) if free else speech_like(fs, 0.5, seed=i)
        noisy = clean + 0.01 * np.random.default_rng(i).standard_normal(len(clean)).astype(np.float32)
        rel_noisy, rel_clean = f"{sim}/noisy/0/{uid}.flac", f"{sim}/clean/0/{uid}.flac"
        write_wav(root / rel_noisy, noisy, fs)
        write_wav(root / rel_clean, clean, fs)
        text = "<not-available>" if free else f"words of {uid}"
        for name, value in (("wav.scp", rel_noisy), ("spk1.scp", rel_clean), ("utt2fs", fs), ("utt2spk", spk),
                            ("text", text), ("utt2lang", code), ("speech_length.scp", len(clean))):
            tables[name].append(f"{uid} {value}")
        log.append("\t".join(map(str, (uid, rel_noisy, "none" if free else f"src_{i}", spk, rel_clean, f"dns_{i}",
                                       5.0, "none", "none", fs, len(clean), text))))
        ids.append(uid)
    (root / lists).mkdir(parents=True, exist_ok=True)
    for name, lines in tables.items():
        (root / lists / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    meta_path = root / (meta or f"{sim}/log/meta.tsv")
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text("\n".join(log) + "\n", encoding="utf-8")
    return ids


def _manifests() -> dict[str, pd.DataFrame]:
    return {s: read_manifest(f"m/manifests/urgent2026/{s}.jsonl") for s in ("train", "dev", "test")}


def _speakers(df: pd.DataFrame) -> set[str]:
    return set(df["speaker"].dropna()) - {"none"}


def test_one_official_folder_holds_out_dev_and_test_by_speaker(tmp_path, monkeypatch):
    """The defaults on a lone training folder: no data/validation, so dev and test are held out by speaker."""
    ids = write_speaker_layout(tmp_path / "official", n_speakers=10, per_speaker=2)
    monkeypatch.chdir(tmp_path)
    args = [*_urgent(tmp_path / "official"), "dataset.urgent2026.holdout.dev=0.2", "dataset.urgent2026.holdout.test=0.1",
            "dataset.num_workers=1"]
    assert _cli("--stage", "prepare", *args) == 0
    assert _cli("--stage", "manifest", *args) == 0
    m = _manifests()
    assert sorted(pd.concat(m.values())["utt_id"]) == sorted(ids)  # every row in exactly one split
    assert len(m["dev"]) == 4 and len(m["test"]) == 2  # round(0.2 * 21), round(0.1 * 21), whole speakers of 2
    assert not _speakers(m["dev"]) & _speakers(m["test"]) and not (_speakers(m["dev"]) | _speakers(m["test"])) & _speakers(m["train"])
    assert (m["dev"]["split"] == "dev").all() and (m["test"]["split"] == "test").all()
    metrics = json.loads(Path("metrics/manifest.json").read_text())["splits"]
    assert metrics["dev"]["source"] == "holdout" and "no folder" in metrics["dev"]["note"]
    assert metrics["dev"]["holdout"] == {"of_utterances": 21, "of_speakers": 10, "of_rows_without_speaker": 1,
                                         "fraction": 0.2, "target_utterances": 4, "held_out_utterances": 4,
                                         "held_out_speakers": 2, "held_out_rows_without_speaker": 0, "seed": 0}
    assert metrics["test"]["speakers"] == 1 and metrics["dev"]["speakers"] == 2 and metrics["train"]["speakers"] == 7
    assert metrics["train"]["held_out"] == {"dev": 4, "test": 2} and metrics["train"]["utterances"] == 15
    first = {s: Path(f"m/manifests/urgent2026/{s}.jsonl").read_bytes() for s in ("train", "dev", "test")}
    assert _cli("--stage", "manifest", *args) == 0  # same params: the same bytes
    assert first == {s: Path(f"m/manifests/urgent2026/{s}.jsonl").read_bytes() for s in ("train", "dev", "test")}
    assert _cli("--stage", "manifest", *args, "dataset.seed=3") == 0  # another seed: other speakers
    assert _speakers(_manifests()["dev"]) != _speakers(m["dev"])


def test_languages_are_iso639_1_with_the_official_code_kept(tmp_path, monkeypatch):
    write_speaker_layout(tmp_path / "o", n_speakers=6, per_speaker=1, codes=(*CODES[:5], "tlh"))
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "all", *_urgent(tmp_path / "o"), *NO_HOLDOUT) == 0
    train = read_manifest("m/manifests/urgent2026/train.jsonl").set_index("utt_id")
    assert train["language"].tolist() == ["en", "de", "es", "fr", "zh", "tlh", "en"]  # fileid_6: speech-free, eng
    orig = [c.get("language_orig") if isinstance(c, dict) else None for c in train["custom"]]
    assert orig == ["eng", "deu", "spa", "fra", "zho", None, "eng"]  # an unknown code is kept as it is
    metrics = json.loads(Path("metrics/manifest.json").read_text())["splits"]["train"]
    assert metrics["languages_unknown"] == {"tlh": 1} and metrics["languages_unknown_rows"] == 1
    assert metrics["languages_normalised"]["eng->en"] == 2 and metrics["languages_normalised"]["zho->zh"] == 1
    assert set(metrics["language"]) == {"en", "de", "es", "fr", "zh", "tlh"}


def test_lists_at_the_top_of_root_are_found(tmp_path, monkeypatch, capsys):
    root = tmp_path / "flat"
    write_speaker_layout(root, n_speakers=6, per_speaker=1, lists=".", sim="audio", meta="meta.tsv")
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", *_urgent(root)) == 0
    assert "the lists at the top of root are used" in capsys.readouterr().out
    assert _cli("--stage", "manifest", *_urgent(root)) == 0
    m = _manifests()
    assert len(m["dev"]) == 1 and len(m["test"]) == 1 and len(m["train"]) == 5  # 5% of 7, at least one each
    layout = json.loads(Path("m/external/urgent2026/layout.json").read_text())
    assert layout["splits"]["train"]["lists"] == str(root) and layout["splits"]["train"]["meta_tsv"] == str(root / "meta.tsv")
    assert set(layout["lists"]["train"]) >= {"wav.scp", "utt2lang", "meta.tsv"}


def test_official_validation_folder_as_dev_or_as_test(tmp_path, monkeypatch):
    root = tmp_path / "o"
    write_speaker_layout(root, n_speakers=10, per_speaker=2)
    val = write_speaker_layout(root, n_speakers=3, per_speaker=1, lists="data/validation", sim="simulation_validation",
                               prefix="val", speech_free=0)
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "all", *_urgent(root), "dataset.num_workers=1") == 0  # defaults: validation is dev
    m = _manifests()
    assert sorted(m["dev"]["utt_id"]) == val and len(m["test"]) == 2 and len(m["train"]) == 19  # target 1: a speaker of 2
    metrics = json.loads(Path("metrics/manifest.json").read_text())["splits"]
    assert metrics["dev"]["source"] == "list" and metrics["test"]["source"] == "holdout"
    as_test = ["dataset.urgent2026.lists.dev=null", "dataset.urgent2026.lists.test=data/validation",
               "dataset.urgent2026.meta_tsv.test=simulation_validation/log/meta.tsv", "dataset.urgent2026.holdout.dev=0.1"]
    assert _cli("--stage", "all", *_urgent(root), *as_test, "dataset.num_workers=1") == 0
    m = _manifests()
    assert sorted(m["test"]["utt_id"]) == val and len(m["dev"]) == 2 and len(m["train"]) == 19
    assert not _speakers(m["dev"]) & _speakers(m["train"])


def test_holdout_needs_enough_speakers_and_names_the_fix(tmp_path, monkeypatch, capsys):
    write_speaker_layout(tmp_path / "o", n_speakers=1, per_speaker=3, speech_free=0)
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", *_urgent(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "has 1 speaker(s)" in err and "dataset.urgent2026.holdout.<split>=0" in err


def test_missing_simulation_log_names_every_place_tried(tmp_path, monkeypatch, capsys):
    root = tmp_path / "o"
    write_speaker_layout(root, n_speakers=4, per_speaker=1, speech_free=0)
    (root / "simulation_train/log/meta.tsv").unlink()
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", *_urgent(root)) == 2
    err = capsys.readouterr().err
    assert "simulation_train/log/meta.tsv" in err and "data/train_simulation/meta.tsv" in err
    assert "dataset.urgent2026.meta_tsv.train" in err
    assert _cli("--stage", "all", *_urgent(root), "dataset.urgent2026.meta_tsv.train=null", *NO_HOLDOUT) == 0


def test_folder_languages_from_three_letter_path_components(tmp_path, monkeypatch):
    for rel in ("train/noisy/eng/a.wav", "train/noisy/deu/b.wav", "train/noisy/mls_french_c.wav", "train/noisy/d.wav"):
        write_wav(tmp_path / "tree" / rel, speech_like(16000, 0.5), 16000)
    monkeypatch.chdir(tmp_path)
    args = ["data.dataset=folder", "dataset.folder.root=tree", "data.root=m", "dataset.folder.globs.dev=null",
            "dataset.folder.globs.test=null"]
    assert _cli("--stage", "prepare", *args) == 0 and _cli("--stage", "manifest", *args) == 0
    train = read_manifest("m/manifests/folder/train.jsonl").set_index("utt_id")["language"].to_dict()
    assert train == {"train-noisy-eng-a": "en", "train-noisy-deu-b": "de", "train-noisy-mls_french_c": "fr",
                     "train-noisy-d": "en"}  # the last: dataset.folder.default_language


def test_one_folder_cannot_be_dev_and_test(tmp_path, monkeypatch, capsys):
    root = tmp_path / "o"
    write_speaker_layout(root, n_speakers=4, per_speaker=1)
    write_speaker_layout(root, n_speakers=2, per_speaker=1, lists="data/validation", sim="simulation_validation",
                         prefix="val", speech_free=0)
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "prepare", *_urgent(root), "dataset.urgent2026.lists.test=data/validation") == 2
    assert "are the same folder ('data/validation')" in capsys.readouterr().err

"""A folder in the official URGENT layout (relative paths) imports into manifests matching the lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ds_helpers import speech_like, write_wav

from curator.datasets.kaldi import META_COLUMNS
from curator.datasets.official import CheckConfig, import_split

UTTS = [  # id, fs, seconds, lang, noise_uid, rir_uid, augmentation, expected label
    ("fileid_1", 16000, 1.0, "en", "dns_noise_1", "none", "none", "noise"),
    ("fileid_2", 48000, 0.8, "zh-CN", "dns_noise_2", "rir_7", "none", "reverb"),
    ("fileid_3", 8000, 1.2, "de", "wind_noise_3",
     "none", "wind_noise(threshold=0.2,ratio=3.0,attack=10.0,release=50.0,sc_gain=1.0,clipping=True,"
     "clipping_threshold=0.9)/codec(format=mp3,encoder=None,qscale=3)", "codec"),
    ("fileid_10", 22050, 0.5, "fr", "wind_noise_1", "rir_2", "wind_noise(threshold=0.1,ratio=2.0,attack=5.0,"
     "release=5.0,sc_gain=1.0,clipping=False,clipping_threshold=0.9)", "wind"),
    ("fileid_11", 44100, 0.6, "es", "fsd_9", "rir_3",
     "bandwidth_limitation-kaiser_best->16000/clipping(min=0.05,max=0.94)", "bandwidth_limitation"),
    ("fileid_12", 8000, 0.7, "en", "fsd_2", "none", "bandwidth_limitation-none->8000", "noise"),
]


def write_official_layout(root: Path) -> Path:
    """Audio under root/simulation_train, lists under root/data/train_simulation (paths relative to root)."""
    lists = root / "data" / "train_simulation"
    lists.mkdir(parents=True)
    tables: dict[str, list[str]] = {k: [] for k in ("wav.scp", "spk1.scp", "utt2fs", "utt2spk", "text", "utt2lang",
                                                    "speech_length.scp")}
    meta = ["\t".join(META_COLUMNS)]
    for i, (uid, fs, sec, lang, noise, rir, aug, _) in enumerate(UTTS):
        clean = speech_like(fs, sec, seed=i)
        noisy = clean + 0.01 * np.random.default_rng(i).standard_normal(len(clean)).astype(np.float32)
        rel_noisy, rel_clean = f"simulation_train/noisy/0/{uid}.flac", f"simulation_train/clean/0/{uid}.flac"
        write_wav(root / rel_noisy, noisy, fs)
        write_wav(root / rel_clean, clean, fs)
        text = f"sentence number {i} with spaces"
        tables["wav.scp"].append(f"{uid} {rel_noisy}")
        tables["spk1.scp"].append(f"{uid} {rel_clean}")
        tables["utt2fs"].append(f"{uid} {fs}")
        tables["utt2spk"].append(f"{uid} spk{i % 2}")
        tables["text"].append(f"{uid} {text}")
        tables["utt2lang"].append(f"{uid} {lang}")
        tables["speech_length.scp"].append(f"{uid} {len(clean)}")
        meta.append("\t".join([uid, rel_noisy, f"src_{i}", f"spk{i % 2}", rel_clean, noise, str(5.5 + i), rir, aug,
                               str(fs), str(len(clean)), text]))
    for name, lines in tables.items():
        (lists / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    (root / "simulation_train" / "log").mkdir(parents=True)
    (root / "simulation_train" / "log" / "meta.tsv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return lists


@pytest.mark.parametrize("mode", ["lists", "header", "decode"])
def test_official_layout_rows_match_the_lists_exactly(tmp_path, monkeypatch, mode):
    root = tmp_path / "urgent"
    lists = write_official_layout(root)
    monkeypatch.chdir(tmp_path)  # the "repository root": files inside it get relative manifest paths
    res = import_split("train", lists, root / "simulation_train/log/meta.tsv", Path("urgent"), "urgent2026",
                       CheckConfig(mode, 1e-4, 1))
    assert res.rejected == []
    assert [r.utt_id for r in res.rows] == sorted(u[0] for u in UTTS)
    by_id = {r.utt_id: r for r in res.rows}
    for i, (uid, fs, sec, lang, noise, rir, aug, label) in enumerate(UTTS):
        r = by_id[uid]
        assert r.path == f"urgent/simulation_train/noisy/0/{uid}.flac"
        assert r.clean_path == f"urgent/simulation_train/clean/0/{uid}.flac"
        assert r.sr == fs and r.duration_sec == pytest.approx(int(fs * sec) / fs)
        assert r.language == {"zh-CN": "zh"}.get(lang, lang)
        assert r.distortion == label
        assert r.augmentations == ([] if aug == "none" else aug.split("/"))
        assert r.rir_id == (None if rir == "none" else rir) and r.noise_id == noise
        assert r.snr_db == pytest.approx(5.5 + i)
        assert r.text == f"sentence number {i} with spaces" and r.speaker == f"spk{i % 2}"
        assert r.split == "train" and r.source == "urgent2026"


def test_paths_outside_the_repository_are_absolute(tmp_path, monkeypatch):
    lists = write_official_layout(tmp_path / "urgent")
    elsewhere = tmp_path / "repo"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = import_split("dev", lists, None, tmp_path / "urgent", "urgent2026", CheckConfig("header", 1e-4, 1))
    assert all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in res.rows)
    assert {r.distortion for r in res.rows} == {"noise"}  # no meta.tsv: additive noise is all we know

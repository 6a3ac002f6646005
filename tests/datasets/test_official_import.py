"""A folder in the official URGENT layout (relative paths) imports into manifests matching the lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from ds_helpers import UTTS, write_official_layout

from curator.datasets.official import CheckConfig, import_split


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

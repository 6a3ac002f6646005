"""A folder in the official URGENT layout (relative paths) imports into manifests matching the lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ds_helpers import UTTS, write_official_layout

from curator.datasets.kaldi import ListError
from curator.datasets.labels import ISO639_1, LANGUAGES, infer_language, language_label, language_of
from curator.datasets.official import (
    CheckConfig,
    holdout_target,
    import_split,
    iter_split,
    speaker_groups,
    speaker_holdout,
)


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
        assert r.custom == ({"language_orig": "zh-CN"} if lang == "zh-CN" else {})  # the list's code, where changed
        assert r.distortion == label
        assert r.augmentations == ([] if aug == "none" else aug.split("/"))
        assert r.rir_id == (None if rir == "none" else rir) and r.noise_id == noise
        assert r.snr_db == pytest.approx(5.5 + i)
        assert r.text == f"sentence number {i} with spaces" and r.speaker == f"spk{i % 2}"
        assert r.split == "train" and r.source == "urgent2026"


def test_float_files_above_full_scale_are_counted_in_the_report(tmp_path, monkeypatch):
    root = tmp_path / "urgent"
    lists = write_official_layout(root)
    uid, fs = UTTS[0][0], UTTS[0][1]
    x, _ = sf.read(str(root / f"simulation_train/noisy/0/{uid}.flac"), dtype="float32")
    sf.write(str(root / f"simulation_train/noisy/0/{uid}.wav"), x / np.abs(x).max() * 2.0, fs, subtype="FLOAT")
    scp = lists / "wav.scp"  # the same samples as a float WAV peaking at 2.0
    scp.write_text(scp.read_text().replace(f"{uid}.flac", f"{uid}.wav"))
    monkeypatch.chdir(tmp_path)
    for mode, expected in (("decode", 1), ("header", 0)):  # only decoding reads the samples
        report: dict = {}
        rejected: list = []
        rows = list(iter_split("train", lists, root / "simulation_train/log/meta.tsv", Path("urgent"), "urgent2026",
                               CheckConfig(mode, 1e-4, 1), rejected, report=report))
        assert rejected == [] and len(rows) == len(UTTS)
        loud = report["over_full_scale"]
        assert loud["n"] == expected
        if expected:
            assert loud["max_peak"] == pytest.approx(2.0, abs=1e-3) and loud["max_peak_file"].endswith(f"{uid}.wav")


def test_paths_outside_the_repository_are_absolute(tmp_path, monkeypatch):
    lists = write_official_layout(tmp_path / "urgent")
    elsewhere = tmp_path / "repo"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = import_split("dev", lists, None, tmp_path / "urgent", "urgent2026", CheckConfig("header", 1e-4, 1))
    assert all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in res.rows)
    assert {r.distortion for r in res.rows} == {"noise"}  # no meta.tsv: additive noise is all we know


# ------------------------------------------------------------------------------------------ language codes


@pytest.mark.parametrize(("code", "iso"), [
    ("eng", "en"), ("deu", "de"), ("ger", "de"), ("spa", "es"), ("fra", "fr"), ("fre", "fr"), ("zho", "zh"),
    ("chi", "zh"), ("cmn", "zh"), ("jpn", "ja"), ("kor", "ko"), ("ita", "it"), ("por", "pt"), ("rus", "ru"),
    ("zh-CN", "zh"), ("en_US", "en"), ("EN", "en"), (" de ", "de"), ("English", "en"), ("Mandarin", "zh"),
    ("und", "unknown"), ("zxx", "none"), ("none", "none"), ("unknown", "unknown"),
])
def test_known_codes_map_to_iso639_1(code, iso):
    assert language_label(code) == (iso, True)


def test_unknown_codes_are_kept_as_given():
    assert language_label("tlh") == ("tlh", False) and language_label("x-Klingon") == ("x-Klingon", False)


def test_language_table_is_consistent():
    aliases = [a for v in ISO639_1.values() for a in v]
    assert len(aliases) == len(set(aliases)), "an alias names two languages"
    assert not set(aliases) & set(ISO639_1), "an alias is itself a 639-1 code"
    assert all(len(code) == 2 and code.islower() for code in ISO639_1)
    assert set(LANGUAGES) <= set(ISO639_1)
    official = {"eng": "en", "deu": "de", "spa": "es", "fra": "fr", "zho": "zh", "cmn": "zh"}  # docs/urgent2026.md
    assert {c: language_label(c)[0] for c in official} == official


def test_language_from_paths_and_ids_takes_three_letter_codes():
    assert infer_language("train/eng/a.wav", LANGUAGES) == "en"
    assert infer_language("x/mls_german_12.flac", LANGUAGES) == "de"
    assert infer_language("cv_zho_1.wav", LANGUAGES) == "zh"
    assert infer_language("speech/plain.wav", LANGUAGES) is None
    assert language_of("common_voice_zh-CN_7", {}) == "zh" and language_of("x", {"x": "fra"}) == "fr"


# ------------------------------------------------------------------------------------------ speaker hold-out


def _groups(n_speakers: int, per: int) -> dict[str, str]:
    return {f"u{s:02d}_{k}": f"spk:{s}" for s in range(n_speakers) for k in range(per)}


def test_holdout_is_deterministic_disjoint_and_sized():
    groups = _groups(40, 3)
    a = speaker_holdout(groups, {"dev": 12, "test": 6}, seed=0)
    assert a == speaker_holdout(dict(reversed(list(groups.items()))), {"dev": 12, "test": 6}, seed=0)  # order-free
    assert len(a["dev"]) == 12 and len(a["test"]) == 6
    assert not a["dev"] & a["test"]
    spk = {s: {groups[u] for u in ids} for s, ids in a.items()}
    train = set(groups.values()) - spk["dev"] - spk["test"]
    assert not spk["dev"] & spk["test"] and train and all(groups[u] in train for u in set(groups) - a["dev"] - a["test"])
    assert all(len([u for u in groups if groups[u] == g]) == 3 for g in spk["dev"])  # whole speakers only
    assert speaker_holdout(groups, {"dev": 12, "test": 6}, seed=1) != a


def test_holdout_sizes_follow_the_target_within_one_speaker():
    groups = {**_groups(30, 4), **{f"x{k}": f"spk:big{k % 2}" for k in range(40)}}  # two speakers of 20
    for seed in range(5):
        held = speaker_holdout(groups, {"dev": 10, "test": 5}, seed)
        assert abs(len(held["dev"]) - 10) <= 2 and abs(len(held["test"]) - 5) <= 2, (seed, held)


def test_holdout_keeps_a_speaker_for_every_split_and_train():
    held = speaker_holdout(_groups(3, 5), {"dev": 100, "test": 100}, seed=0)
    assert len(held["dev"]) == 5 and len(held["test"]) == 5
    with pytest.raises(ListError, match="needs at least 3"):
        speaker_holdout(_groups(2, 5), {"dev": 1, "test": 1}, seed=0)
    assert speaker_holdout(_groups(2, 5), {"dev": 1, "test": 0}, seed=0).keys() == {"dev"}


def test_holdout_targets():
    assert holdout_target(1000, 0.05, None) == 50 and holdout_target(1000, 0.05, 20) == 20
    assert holdout_target(7, 0.05, None) == 1 and holdout_target(7, 0.0, None) == 0


def test_speech_free_rows_are_their_own_group(tmp_path):
    lists = {"wav.scp": {"a": "x", "b": "y", "c": "z"}, "utt2spk": {"a": "s1", "b": "none"}}
    meta = {"a": {"speech_uid": "u1", "speech_sid": "s1"}, "b": {"speech_uid": "none", "speech_sid": "none"},
            "c": {"speech_uid": "none", "speech_sid": "none"}}
    assert speaker_groups(lists, meta) == {"a": "spk:s1", "b": "utt:b", "c": "utt:c"}
    assert speaker_groups({"wav.scp": {"a": "x"}}, None) == {"a": "utt:a"}

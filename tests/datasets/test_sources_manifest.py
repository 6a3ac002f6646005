"""The ``sources`` stage through the CLI: official-format source lists (urgent2026), the mini dataset's sources,
folder globs, every hostile file counted, and the source manifest contract's round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ds_helpers import PARAMS, TINY, speech_like, write_wav

from curator.contract.sources import (
    KINDS,
    Source,
    SourceManifestError,
    iter_sources,
    read_sources,
    write_sources,
)
from curator.datasets.cli import main
from curator.datasets.labels import LANGUAGES

MANIFEST = {"urgent2026": "m/manifests/urgent2026/sources.jsonl", "folder": "m/manifests/folder/sources.jsonl"}


def _cli(*args: str) -> int:
    return main(["--dataset_cfg", str(PARAMS), "--data_cfg", str(PARAMS), *args])


def _rows(path: str) -> dict[tuple[str, str], Source]:
    """(kind, source_id) -> row, validated by the contract's reader (None stays None, unlike in a DataFrame)."""
    return {s.key: s for s in iter_sources(path)}


def _metrics() -> dict:
    return json.loads(Path("metrics/sources.json").read_text())


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------------------------ official lists


def _official_sources(root: Path) -> list[str]:
    """Two speech corpora, noise, wind, RIRs and label lists in the official formats; returns the overrides."""
    lists = root / "lists"
    speech_a, speech_b = [], []
    for i, (fs, sec) in enumerate(((16000, 1.0), (48000, 0.5), (24000, 0.8))):
        write_wav(root / f"cv/s{i}.wav", speech_like(fs, sec, seed=i), fs)
        speech_a.append(f"cv_{i} {fs} cv/s{i}.wav")
    for i, uid in enumerate(("lt_0", "cv_fr_3", "plain_4")):  # plain_4: no utt2lang entry, no language token
        write_wav(root / f"lt/{uid}.flac", speech_like(22050, 0.6 + 0.1 * i, seed=10 + i), 22050)
        speech_b.append(f"{uid} 22050 lt/{uid}.flac")
    rng = np.random.default_rng(0)
    for i in range(2):
        write_wav(root / f"noise/n{i}.wav", 0.1 * rng.standard_normal(48000).astype(np.float32), 48000)
    write_wav(root / "noise/wind0.wav", 0.1 * rng.standard_normal(32000).astype(np.float32), 16000)
    write_wav(root / "rir/r0.wav", np.exp(-np.arange(800) / 100.0).astype(np.float32), 8000)
    _lines(lists / "commonvoice_de.scp", speech_a)
    _lines(lists / "libritts.scp", speech_b)
    _lines(lists / "noise_dns.scp", ["n0 48000 noise/n0.wav", "n1 48000 noise/n1.wav"])
    _lines(lists / "wind.scp", ["wind_noise_0 16000 noise/wind0.wav"])
    _lines(lists / "rirs.scp", ["r0 8000 rir/r0.wav"])
    _lines(lists / "utt2spk", ["cv_0 spk_a", "cv_1 spk_a", "cv_2 spk_b", "lt_0 spk_c", "cv_fr_3 spk_c"])
    _lines(lists / "text", ["cv_0 hallo welt", "cv_1 <not-available>", "lt_0 hello there"])
    _lines(lists / "utt2lang", ["cv_0 deu", "cv_1 deu", "cv_2 xyz", "lt_0 eng", "n0 cmn"])
    return ["data.dataset=urgent2026", f"dataset.urgent2026.root={root}", "data.root=m",
            "dataset.urgent2026.sources.speech=[lists/commonvoice_de.scp,lists/libritts.scp]",
            "dataset.urgent2026.sources.noise=[lists/noise_dns.scp]",
            "dataset.urgent2026.sources.wind_noise=[lists/wind.scp]",
            "dataset.urgent2026.sources.rir=[lists/rirs.scp]",
            "dataset.urgent2026.sources.utt2spk=[lists/utt2spk]", "dataset.urgent2026.sources.text=[lists/text]",
            "dataset.urgent2026.sources.utt2lang=[lists/utt2lang]"]


def test_official_lists_become_a_source_manifest(tmp_path, monkeypatch):
    args = _official_sources(tmp_path / "official")
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "sources", *args, "dataset.urgent2026.sources.corpus={libritts: LibriTTS-R}") == 0
    df = read_sources(MANIFEST["urgent2026"])
    assert df.groupby("kind").size().to_dict() == {"speech": 6, "noise": 2, "wind_noise": 1, "rir": 1}
    rows = _rows(MANIFEST["urgent2026"])
    sp = {k[1]: r for k, r in rows.items() if k[0] == "speech"}
    assert {u: r.corpus for u, r in sp.items()} == {"cv_0": "commonvoice_de", "cv_1": "commonvoice_de",
                                                    "cv_2": "commonvoice_de", "lt_0": "LibriTTS-R",
                                                    "cv_fr_3": "LibriTTS-R", "plain_4": "LibriTTS-R"}
    assert {u: r.language for u, r in sp.items()} == {"cv_0": "de", "cv_1": "de", "cv_2": "xyz", "lt_0": "en",
                                                      "cv_fr_3": "fr", "plain_4": "unknown"}
    assert sp["cv_0"].custom == {"language_orig": "deu"} and sp["cv_2"].custom == {}
    assert {u: r.speaker for u, r in sp.items()} == {"cv_0": "spk_a", "cv_1": "spk_a", "cv_2": "spk_b",
                                                     "lt_0": "spk_c", "cv_fr_3": "spk_c", "plain_4": None}
    assert sp["cv_0"].text == "hallo welt" and sp["cv_1"].text is None and sp["cv_2"].text is None
    assert sp["cv_1"].sr == 48000 and sp["cv_1"].duration_sec == pytest.approx(0.5)
    assert sp["lt_0"].duration_sec == pytest.approx(0.6)
    assert sp["cv_0"].path == "official/cv/s0.wav"  # inside the cwd: relative, as manifest paths are
    assert rows[("noise", "n0")].language == "unknown" and rows[("noise", "n0")].corpus == "noise_dns"
    wind = rows[("wind_noise", "wind_noise_0")]
    assert (wind.sr, wind.duration_sec, wind.corpus) == (16000, pytest.approx(2.0), "wind")
    assert rows[("rir", "r0")].duration_sec == pytest.approx(0.1)
    m = _metrics()
    assert m["sources"] == 10 and m["skipped"] == 0 and m["skipped_by_reason"] == {}
    speech = m["kinds"]["speech"]
    assert speech["sources"] == 6 and speech["speakers"] == 3 and speech["without_speaker"] == 1
    assert speech["corpus"]["commonvoice_de"]["n"] == 3
    assert speech["corpus"]["LibriTTS-R"]["hours"] == pytest.approx((0.6 + 0.7 + 0.8) / 3600, abs=1e-6)
    assert speech["language"]["de"] == {"n": 2, "hours": pytest.approx(1.5 / 3600, abs=1e-6)}
    assert m["hours"] == pytest.approx(df["duration_sec"].sum() / 3600, abs=1e-5)
    assert m["languages_normalised"] == {"deu->de": 2, "eng->en": 1}
    assert m["languages_unknown_codes"] == {"xyz": 1}
    assert (m["languages_from_uid"], m["languages_missing"], m["languages_missing_examples"]) == (1, 1, ["plain_4"])
    assert m["label_entries_without_speech"] == {"utt2spk": 0, "text": 0, "utt2lang": 1}
    before = Path(MANIFEST["urgent2026"]).read_bytes()
    assert _cli("--stage", "sources", *args, "dataset.urgent2026.sources.corpus={libritts: LibriTTS-R}") == 0
    assert Path(MANIFEST["urgent2026"]).read_bytes() == before  # deterministic


def test_a_uid_in_two_lists_of_one_kind_is_an_error_naming_both(tmp_path, monkeypatch, capsys):
    args = _official_sources(tmp_path / "official")
    lists = tmp_path / "official" / "lists"
    with open(lists / "libritts.scp", "a") as f:
        f.write("cv_1 48000 cv/s1.wav\n")
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "sources", *args) == 2
    err = capsys.readouterr().err
    assert "speech source 'cv_1'" in err and "commonvoice_de.scp" in err and "libritts.scp" in err
    assert not Path(MANIFEST["urgent2026"]).exists()
    (lists / "libritts.scp").write_text((lists / "libritts.scp").read_text().replace("cv_1 48000 cv/s1.wav\n", ""))
    # the same uid as a noise and a speech source is fine: the key is (kind, uid)
    with open(lists / "noise_dns.scp", "a") as f:
        f.write("cv_0 48000 noise/n0.wav\n")
    assert _cli("--stage", "sources", *args) == 0
    assert read_sources(MANIFEST["urgent2026"], kinds=["noise"])["source_id"].tolist() == ["cv_0", "n0", "n1"]


def test_bad_source_params_are_clear_errors(tmp_path, monkeypatch, capsys):
    args = _official_sources(tmp_path / "official")
    monkeypatch.chdir(tmp_path)
    # no speech lists: an empty manifest that says why (the pair-level pipeline still runs on such a folder)
    assert _cli("--stage", "sources", *args, "dataset.urgent2026.sources.speech=[]") == 0
    assert "source-level curation (curation.level: sources) is unavailable" in capsys.readouterr().err
    assert _rows(MANIFEST["urgent2026"]) == {}
    assert "dataset.urgent2026.sources.speech is empty" in _metrics()["unavailable"]
    assert _cli("--stage", "sources", *args, "dataset.urgent2026.sources.corpus={librits: x}") == 2
    assert "['librits']" in capsys.readouterr().err
    with open(tmp_path / "official/lists/utt2lang", "a") as f:
        f.write("\n")
    _lines(tmp_path / "official/lists/utt2lang2", ["cv_0 eng"])
    assert _cli("--stage", "sources", *args, "dataset.urgent2026.sources.utt2lang=[lists/utt2lang,lists/utt2lang2]") == 2
    err = capsys.readouterr().err
    assert "language of 'cv_0'" in err and "utt2lang2" in err


def test_hostile_files_are_skipped_counted_and_named(tmp_path, monkeypatch):
    args = _official_sources(tmp_path / "official")
    root = tmp_path / "official"
    write_wav(root / "bad/odd_rate.wav", speech_like(11025, 0.5), 11025)
    (root / "bad/broken.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(str(root / "bad/empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    write_wav(root / "bad/stereo.wav", np.stack([speech_like(16000, 0.5)] * 2, axis=1), 16000)
    write_wav(root / "bad/stored48k.wav", speech_like(48000, 0.5), 48000)
    with open(root / "lists/libritts.scp", "a") as f:
        f.write("x_missing 16000 bad/nowhere.wav\nx_broken 16000 bad/broken.wav\nx_empty 16000 bad/empty.wav\n"
                "x_odd 11025 bad/odd_rate.wav\nx_stereo 16000 bad/stereo.wav\nx_48k 16000 bad/stored48k.wav\n")
    with open(root / "lists/rirs.scp", "a") as f:
        f.write("r_missing 16000 rir/nowhere.wav\n")
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "sources", *args, "dataset.rate_policy=resample", "dataset.channel_policy=first") == 0
    rows = _rows(MANIFEST["urgent2026"])
    odd = rows[("speech", "x_odd")]
    assert (odd.sr, odd.custom["source_sr"], odd.duration_sec) == (16000, 11025, pytest.approx(5512 / 11025))
    assert rows[("speech", "x_stereo")].custom == {"channels": 2, "channel_policy": "first"}
    stored = rows[("speech", "x_48k")]
    assert (stored.sr, stored.custom["file_sr"], stored.duration_sec) == (16000, 48000, pytest.approx(0.5))
    m = _metrics()
    assert m["skipped_by_reason"] == {"empty": 1, "missing": 2, "undecodable": 1}
    assert m["skipped"] == 4 and m["kinds"]["speech"]["skipped"] == 3 and m["kinds"]["rir"]["skipped"] == 1
    named = {(e["kind"], e["source_id"]): e["reason"] for e in m["skipped_examples"]}
    assert named == {("speech", "x_missing"): "missing", ("speech", "x_broken"): "undecodable",
                     ("speech", "x_empty"): "empty", ("rir", "r_missing"): "missing"}
    assert ("speech", "x_missing") not in rows and len(rows) == 10 + 3
    pol = m["input_policy"]
    assert (pol["resampled"], pol["resampled_by_rate"], pol["resampled_examples"]) == (1, {"11025->16000": 1},
                                                                                       ["speech:x_odd"])
    assert pol["multichannel"] == 1 and pol["file_rate_differs_by_rate"] == {"48000->16000": 1}

    assert _cli("--stage", "sources", *args, "dataset.rate_policy=reject", "dataset.channel_policy=reject",
                "dataset.max_report_examples=2") == 0
    m = _metrics()
    assert m["skipped_by_reason"] == {"empty": 1, "missing": 2, "multichannel": 1, "undecodable": 1,
                                      "unsupported_rate": 1}
    assert len(m["skipped_examples"]) == 2 and m["skipped"] == 6
    ids = set(read_sources(MANIFEST["urgent2026"])["source_id"])
    assert not ids & {"x_odd", "x_stereo", "x_missing"} and "x_48k" in ids


# ------------------------------------------------------------------------------------------ mini


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """A tiny mini dataset, prepared only (the profile of the other mini tests: ds_helpers.TINY)."""
    root = tmp_path_factory.mktemp("mini_sources")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    assert _cli("--stage", "prepare", *TINY, "dataset.num_workers=1") == 0
    assert _cli("--stage", "sources", *TINY) == 0
    mp.undo()
    return root


def test_mini_sources_are_the_lists_prepare_wrote(mini, monkeypatch):
    monkeypatch.chdir(mini)
    ext = Path("data/external/mini")
    df = read_sources("data/manifests/mini/sources.jsonl")
    lists = {"speech": "speech.scp", "noise": "noise.scp", "wind_noise": "wind_noise.scp", "rir": "rirs.scp"}
    for kind, name in lists.items():
        listed = {line.split()[0]: line.split() for line in (ext / "sources/train" / name).read_text().splitlines()}
        got = df[df["kind"] == kind]
        assert sorted(got["source_id"]) == sorted(listed), kind
        for r in got.itertuples():
            assert r.path == (ext / listed[r.source_id][2]).as_posix() and Path(r.path).is_file()
            info = sf.info(r.path)
            assert r.sr == int(listed[r.source_id][1]) and r.duration_sec == pytest.approx(info.frames / info.samplerate)
    assert set(df["corpus"]) == {"mini"} and set(df["split"]) == {"train"}
    speech = df[df["kind"] == "speech"]
    assert len(speech) == 6  # 8 train rows, a quarter speech-free
    assert set(speech["language"]) <= set(LANGUAGES) and speech["speaker"].str.startswith("mini_train_spk").all()
    assert speech["text"].notna().all()
    defects = [c["defect"] for c in speech["custom"]]
    assert set(defects) <= {"none", "noise", "reverb", "bandlimit"} and "none" in defects and len(set(defects)) > 1
    assert (df.loc[df["kind"] != "speech", "custom"] == {}).all()
    m = _metrics()
    assert m["dataset"] == "mini" and m["skipped"] == 0
    assert {k: m["kinds"][k]["sources"] for k in KINDS} == df.groupby("kind").size().reindex(list(KINDS)).to_dict()
    assert m["kinds"]["speech"]["speakers"] == 2 and m["kinds"]["rir"]["sources"] == 2
    assert sum(m["planted_defects"].values()) == 6 and m["planted_defects"]["none"] == defects.count("none")
    assert m["kinds"]["speech"]["hours"] == pytest.approx(speech["duration_sec"].sum() / 3600, abs=1e-5)


def test_mini_sources_need_prepare(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _cli("--stage", "sources", *TINY) == 2
    assert "run the prepare stage first" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ folder


def test_folder_globs_label_sources_from_paths(tmp_path, monkeypatch, capsys):
    tree = tmp_path / "tree"
    write_wav(tree / "src/speech/vctk/de/spk1/a.wav", speech_like(16000, 0.5), 16000)
    write_wav(tree / "src/speech/vctk/en/spk2/b.wav", speech_like(48000, 0.25), 48000)
    write_wav(tree / "src/speech/ears/xx/spk3/c.flac", speech_like(24000, 0.5), 24000)
    (tree / "src/speech/ears/xx/spk3/d.wav").write_bytes(b"garbage")
    write_wav(tree / "src/noise/dns/n.wav", np.full(8000, 0.1, dtype=np.float32), 16000)
    write_wav(tree / "src/rir/sim/r.wav", np.exp(-np.arange(400) / 50.0).astype(np.float32), 16000)
    monkeypatch.chdir(tmp_path)
    base = ["data.dataset=folder", f"dataset.folder.root={tree}", "data.root=m", "dataset.folder.default_language=es"]
    args = [*base, "dataset.folder.sources.speech=src/speech/**/*.*", "dataset.folder.sources.noise=src/noise/**/*.wav",
            "dataset.folder.sources.rir=src/rir/**/*.wav", "dataset.folder.sources.speaker_level=1"]
    assert _cli("--stage", "sources", *args) == 0
    df = read_sources(MANIFEST["folder"])
    rows = _rows(MANIFEST["folder"])
    assert sorted(rows) == [("noise", "src-noise-dns-n"), ("rir", "src-rir-sim-r"), ("speech", "src-speech-ears-xx-spk3-c"),
                            ("speech", "src-speech-vctk-de-spk1-a"), ("speech", "src-speech-vctk-en-spk2-b")]
    a, b, c = (rows[("speech", f"src-speech-{p}")] for p in ("vctk-de-spk1-a", "vctk-en-spk2-b", "ears-xx-spk3-c"))
    assert (a.language, a.speaker, a.sr, a.duration_sec) == ("de", "spk1", 16000, pytest.approx(0.5))
    assert (b.language, b.speaker, b.sr, b.duration_sec) == ("en", "spk2", 48000, pytest.approx(0.25))
    assert (c.language, c.speaker, c.sr) == ("es", "spk3", 24000)  # no language in the path: the default
    assert a.path == "tree/src/speech/vctk/de/spk1/a.wav"
    noise = rows[("noise", "src-noise-dns-n")]
    assert (noise.speaker, noise.language, noise.duration_sec) == (None, "unknown", pytest.approx(0.5))
    assert rows[("rir", "src-rir-sim-r")].duration_sec == pytest.approx(400 / 16000)
    assert set(df["corpus"]) == {"folder"}
    m = _metrics()
    assert m["skipped_by_reason"] == {"undecodable": 1}
    assert m["skipped_examples"] == [{"kind": "speech", "source_id": "src-speech-ears-xx-spk3-d",
                                      "path": "tree/src/speech/ears/xx/spk3/d.wav", "reason": "undecodable"}]
    assert m["kinds"]["wind_noise"]["sources"] == 0 and m["kinds"]["speech"]["speakers"] == 3
    assert (m["languages_from_path"], m["languages_default"]) == (2, 1)

    assert _cli("--stage", "sources", *args, "dataset.folder.sources.corpus_level=3") == 0
    corpus = {k: r.corpus for k, r in _rows(MANIFEST["folder"]).items()}
    assert corpus[("speech", "src-speech-vctk-de-spk1-a")] == "vctk" and corpus[("speech", "src-speech-ears-xx-spk3-c")] == "ears"
    assert corpus[("noise", "src-noise-dns-n")] == "src"  # counted up from each file
    assert _cli("--stage", "sources", *args, "dataset.folder.sources.corpus_level=4") == 2
    assert "corpus_level = 4, but 'src/noise/dns/n.wav' has only 3 folder(s)" in capsys.readouterr().err
    assert _cli("--stage", "sources", *base) == 0  # no speech glob: an empty manifest that says why
    assert "dataset.folder.sources.speech is null" in capsys.readouterr().err and _rows(MANIFEST["folder"]) == {}
    write_wav(tree / "src/speech/vctk/de/spk1/a.flac", speech_like(16000, 0.5), 16000)  # same id as a.wav
    assert _cli("--stage", "sources", *args) == 2
    err = capsys.readouterr().err
    assert "speech source 'src-speech-vctk-de-spk1-a'" in err and "a.flac" in err and "a.wav" in err


# ------------------------------------------------------------------------------------------ contract


def _src(uid: str, kind: str = "speech", **kw) -> Source:
    return Source(source_id=uid, kind=kind, path=f"a/{uid}.wav", sr=16000, duration_sec=1.5, **kw)


def test_contract_round_trip_and_errors(tmp_path):
    path = tmp_path / "sources.jsonl"
    rows = [_src("b", language="de", speaker="s1", corpus="c", custom={"defect": "noise"}), _src("a"),
            _src("a", "rir"), _src("z", "noise"), {"source_id": "w", "kind": "wind_noise", "path": "w.wav",
                                                  "sr": 48000, "duration_sec": 2, "split": "train", "schema_version": 1}]
    assert write_sources(path, rows) == {"speech": 2, "noise": 1, "wind_noise": 1, "rir": 1}
    df = read_sources(path)
    assert list(zip(df["kind"], df["source_id"], strict=True)) == [("speech", "a"), ("speech", "b"), ("noise", "z"),
                                                                    ("wind_noise", "w"), ("rir", "a")]
    back = list(iter_sources(path))
    assert back[1] == rows[0] and back[3].duration_sec == 2.0 and back[3].language == "unknown"
    assert read_sources(path, kinds=["rir"])["source_id"].tolist() == ["a"]
    with pytest.raises(SourceManifestError, match="duplicate speech source_id 'a'"):
        write_sources(tmp_path / "dup.jsonl", [_src("a"), _src("a")])
    with pytest.raises(SourceManifestError, match="kind 'music' is not one of"):
        write_sources(tmp_path / "bad.jsonl", [{**_src("a").to_dict(), "kind": "music"}])
    with pytest.raises(SourceManifestError, match=r"bad.jsonl \(row 2\): kind 'music'"):
        write_sources(tmp_path / "bad.jsonl", [_src("a"), _src("b", "music")])
    with pytest.raises(SourceManifestError, match="duration_sec must be a positive number"):
        write_sources(tmp_path / "bad.jsonl", [Source("a", "rir", "a.wav", 16000, 0.0)])
    assert not (tmp_path / "bad.jsonl").exists()
    with pytest.raises(ValueError, match="unknown source kind"):
        read_sources(path, kinds=["music"])
    lines = path.read_text().splitlines()
    (tmp_path / "dup2.jsonl").write_text("\n".join([lines[0], lines[0]]) + "\n")
    with pytest.raises(SourceManifestError, match="dup2.jsonl:2: duplicate speech"):
        read_sources(tmp_path / "dup2.jsonl")

"""Source scoring through its CLI: statuses, noise clips with speech flagged, speech columns equal to pair
scoring's on the same clean signal, resume after a crash, params errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from curator.contract.manifest import write_manifest
from curator.contract.source_scores import read_source_scores, read_source_settings
from curator.contract.sources import Source, write_sources
from curator.io import sha256_file
from curator.scoring.scorers.clipping import ClippingScorer
from curator.scoring.sources.cli import main
from curator.scoring.sources.scorers import rir_decay

from .conftest import TEST_PARAMS, score_params

SENTENCES = [("en", "The old painter repairs the garden gate by the river."),
             ("de", "Der alte Maler repariert das Gartentor am Fluss entlang."),
             ("en", "A quiet student reads a small book on Sunday afternoon.")]
SPEECH_RATES = (16000, 48000, 24000)
RIR_RT60 = (0.3, 0.9)
FAST = ("source_score.num_workers=1", "source_score.shard_size=2", "source_score.batch_size=2")
"""One in-process worker (monkeypatches reach the scorers), several shards per group."""
REF_COLUMNS = ("ref_dnsmos_sig", "ref_dnsmos_bak", "ref_dnsmos_ovrl", "mos_dns", "ref_bandwidth_hz",
               "ref_bandwidth_ratio", "ref_speech_ratio", "ref_clip_ratio", "ref_quality")


def _tts() -> list[tuple[np.ndarray, int]]:
    """Three mini-dataset TTS utterances (piper, as the mini build makes its speech sources) at 22.05 kHz."""
    from curator.datasets.mini.tts import PIPER_SR, Speaker, Synthesizer, TTSUnavailableError

    try:
        synth = Synthesizer()
    except TTSUnavailableError as exc:
        pytest.skip(f"the mini dataset's TTS is not installed: {exc}")
    speakers = [Speaker("a", 1.0, 1.0, 0.3), Speaker("b", 1.1, 0.9, 0.5), Speaker("c", 0.92, 1.1, 0.2)]
    return [(synth.synthesize(text, lang, spk), PIPER_SR) for (lang, text), spk in zip(SENTENCES, speakers, strict=True)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A tiny source manifest of every kind, with a noise clip that has TTS speech mixed into it and bad rows."""
    from curator.audio import resample
    from curator.datasets.mini import noises
    from curator.datasets.mini.rirs import shoebox_rir

    root = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    rows: list[Source] = []
    audio: dict[str, np.ndarray] = {}

    def add(kind: str, sid: str, x: np.ndarray | None, sr: int, **labels: str) -> None:
        path = root / kind / f"{sid}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        if x is None:
            path.write_bytes(b"not audio")
            seconds = 1.0
        else:
            sf.write(str(path), x, sr, subtype="PCM_16" if kind != "rir" else "PCM_24")
            audio[f"{kind}:{sid}"] = x
            seconds = len(x) / sr
        rows.append(Source(sid, kind, str(path), sr, seconds, corpus=labels.get("corpus", "test"),
                           speaker=labels.get("speaker"), language=labels.get("language", "unknown")))

    speech = _tts()
    for i, ((x, sr), rate, (lang, _)) in enumerate(zip(speech, SPEECH_RATES, SENTENCES, strict=True)):
        y = np.pad(resample(x, sr, rate), (rate // 4, rate // 4))
        add("speech", f"spk_utt{i}", 0.5 * y / np.max(np.abs(y)), rate, speaker=f"spk{i % 2}", language=lang)
    add("speech", "broken", None, 16000)
    add("speech", "short", speech[0][0][: 22050 // 5], 22050)

    sr = 16000
    plain = noises.coloured(4 * sr, sr, rng)
    talk = resample(speech[0][0], speech[0][1], sr)
    talk = np.pad(talk, (sr // 2, 4 * sr - len(talk) - sr // 2))
    mixed = plain * 0.2 + talk * (0.5 / np.max(np.abs(talk)))  # speech well above the noise
    add("noise", "plain", 0.5 * plain, sr)
    add("noise", "with_speech", mixed / np.max(np.abs(mixed)) * 0.5, sr)
    add("noise", "hum", noises.hum(3 * sr, sr, rng), sr)
    add("noise", "silent", np.zeros(2 * sr, dtype=np.float32), sr)
    add("wind_noise", "gust", noises.wind(3 * 48000, 48000, rng), 48000)
    for i, rt60 in enumerate(RIR_RT60):
        add("rir", f"room{i}", shoebox_rir(sr, rt60, (3.0, 8.0), np.random.default_rng(i)), sr)
    write_sources(root / "sources.jsonl", rows)
    return root / "sources.jsonl", audio


def _run(tmp: Path, manifest: Path, *extra: str, out: str = "scores.parquet") -> int:
    return main(["--config", str(TEST_PARAMS), "--sources", str(manifest), "--out", str(tmp / out),
                 "--metrics", str(tmp / "metrics.json"), *FAST, *extra])


@pytest.fixture(scope="module")
def scored(sources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest, _ = sources
    tmp = tmp_path_factory.mktemp("scored")
    assert _run(tmp, manifest) == 0
    return tmp


def test_rows_statuses_and_metrics(scored: Path):
    table = read_source_scores(scored / "scores.parquet").to_pandas()
    assert list(table.columns[:9]) == ["source_id", "kind", "status", "path", "sr", "duration_sec", "corpus",
                                       "speaker", "language"]
    assert list(zip(table["kind"], table["source_id"], strict=True)) == [
        ("speech", "broken"), ("speech", "short"), ("speech", "spk_utt0"), ("speech", "spk_utt1"),
        ("speech", "spk_utt2"), ("noise", "hum"), ("noise", "plain"), ("noise", "silent"), ("noise", "with_speech"),
        ("wind_noise", "gust"), ("rir", "room0"), ("rir", "room1")]
    status = dict(zip(table["source_id"], table["status"], strict=True))
    assert (status["broken"], status["short"], status["silent"]) == ("unreadable", "too_short", "silent")
    ok_speech = table[(table["kind"] == "speech") & (table["status"] == "ok")]
    assert len(ok_speech) == 3
    assert ok_speech["ref_dnsmos_ovrl"].between(1.0, 5.0).all() and (ok_speech["ref_speech_ratio"] > 0.3).all()
    assert set(ok_speech["language"]) == {"en", "de"} and set(ok_speech["speaker"]) == {"spk0", "spk1"}
    assert table.loc[table["kind"] != "speech", "ref_dnsmos_ovrl"].isna().all()
    assert table.loc[table["kind"] == "speech", "noise_level_dbfs"].isna().all()
    assert table["ssl_embed"].notna().tolist() == [False, False, True, True, True] + [False] * 7
    noise_ok = table[table["kind"].isin(["noise", "wind_noise"]) & (table["status"] == "ok")]
    assert noise_ok["noise_level_dbfs"].between(-40.0, 0.0).all()
    assert noise_ok["noise_bandwidth_hz"].gt(0).all()
    metrics = json.loads((scored / "metrics.json").read_text())
    assert metrics["rows_by_kind"] == {"speech": 5, "noise": 4, "wind_noise": 1, "rir": 2}
    assert metrics["status_by_kind"]["speech"] == {"ok": 3, "too_short": 1, "unreadable": 1}
    assert metrics["status_by_kind"]["noise"] == {"ok": 3, "silent": 1}
    assert metrics["invalid_rows"] == 3
    assert {(e["source_id"], e["status"]) for e in metrics["invalid_examples"]} == {
        ("broken", "unreadable"), ("short", "too_short"), ("silent", "silent")}
    timings = json.loads((scored / "timings" / "metrics.json").read_text())
    assert set(timings["groups"]) == {"speech", "noise", "rir"} and timings["groups"]["speech"]["scorer_seconds"]["dnsmos"] > 0


def test_noise_clip_with_speech_is_flagged_and_plain_noise_is_not(scored: Path):
    table = read_source_scores(scored / "scores.parquet").to_pandas().set_index("source_id")
    assert table.loc["with_speech", "noise_has_speech"] == True  # noqa: E712
    assert table.loc["with_speech", "noise_speech_ratio"] > 0.5
    for clean in ("plain", "hum", "gust"):
        assert table.loc[clean, "noise_has_speech"] == False, clean  # noqa: E712
        assert table.loc[clean, "noise_speech_ratio"] <= 0.2
    assert table.loc["silent", "noise_has_speech"] is None or np.isnan(table.loc["silent", "noise_speech_ratio"])
    assert table.loc[table.index.str.startswith("spk_utt"), "noise_has_speech"].isna().all()
    metrics = json.loads((scored / "metrics.json").read_text())
    assert metrics["noise_with_speech"] == {"noise": 1, "wind_noise": 0}
    assert [e["source_id"] for e in metrics["noise_with_speech_examples"]] == ["with_speech"]


def test_rir_decay_orders_rooms_and_matches_a_synthetic_decay(scored: Path):
    table = read_source_scores(scored / "scores.parquet").to_pandas().set_index("source_id")
    short, long = table.loc["room0", "rir_rt60_sec"], table.loc["room1", "rir_rt60_sec"]
    assert 0.2 < short < long < 1.5
    assert np.isfinite(table.loc[["room0", "room1"], "rir_drr_db"]).all()
    sr, rt60 = 16000, 0.5  # exponential decay of white noise: RT60 by construction
    t = np.arange(int(1.5 * sr)) / sr
    h = np.random.default_rng(0).standard_normal(len(t)) * 10 ** (-3 * t / rt60)
    assert rir_decay(h, sr)[0] == pytest.approx(rt60, rel=0.05)
    tail = np.concatenate([np.zeros(100), h[100:]])  # a unit direct path, then a tail of energy 0.1 from 6 ms on
    tail *= np.sqrt(0.1 / np.sum(tail**2))
    tail[0] = 1.0
    assert rir_decay(np.concatenate([np.zeros(50), tail]), sr)[1] == pytest.approx(10.0, abs=1e-9)


def test_speech_columns_equal_pair_scoring_of_the_same_clean_signal(scored: Path, sources, tmp_path: Path):
    from curator.scoring.runner import score_rows

    manifest, _ = sources
    table = read_source_scores(scored / "scores.parquet").to_pandas()
    speech = table[(table["kind"] == "speech") & (table["status"] == "ok")].reset_index(drop=True)
    rows = [{"utt_id": r.source_id, "path": r.path, "clean_path": r.path, "duration_sec": r.duration_sec, "sr": int(r.sr),
             "language": r.language, "distortion": "noise", "split": "train"} for r in speech.itertuples()]
    write_manifest(tmp_path / "pairs.jsonl", rows)
    # the pair scorer's reference scorers (and sisdr: loss_proxy needs one input-difficulty column)
    params = score_params(scorers="[dnsmos, bandwidth, vad, clipping, embedding, sisdr]", num_workers=1,
                          **{"loss_proxy.weights": "{in_sisdr: 1.0}"})
    pairs = score_rows(rows, params, tmp_path / "work").table.to_pandas().set_index("utt_id").loc[speech["source_id"]]
    for col in REF_COLUMNS:
        np.testing.assert_array_equal(speech[col].to_numpy(), pairs[col].to_numpy(), err_msg=col)
    np.testing.assert_array_equal(np.stack(speech["ssl_embed"]), np.stack(pairs["ssl_embed"]))


def test_dnsmos_stacked_windows_give_the_same_scores(sources):
    """The GPU path (every window of a batch in stacked runs) scores exactly as one window per run does."""
    from curator.scoring.base import AudioBatch
    from curator.scoring.scorers.dnsmos import DnsmosOptions, DnsmosScorer

    _, audio = sources
    signals = [audio[f"speech:spk_utt{i}"] for i in range(3)]
    long = np.concatenate([signals[0]] * 6)  # 16 kHz, > 9.01 s: several windows with max_windows null
    batch = AudioBatch(["a", "b", "c"], np.array([16000, 24000, 16000]), [signals[0], signals[2], long],
                       [signals[0], signals[2], long], np.zeros(3, dtype=bool))
    scorer = DnsmosScorer(DnsmosOptions(max_windows=None))
    scorer.setup()
    one = scorer.score_batch(batch)
    scorer.stacked = True
    stacked = scorer.score_batch(batch)
    for col in scorer.outputs:
        np.testing.assert_array_equal(one[col], stacked[col], err_msg=col)


def test_resume_after_a_crash_recomputes_only_unfinished_shards(sources, scored: Path, tmp_path: Path, monkeypatch):
    manifest, _ = sources
    calls: list[str] = []
    original = ClippingScorer.score_batch

    def crashing(self, batch):
        if "speech:spk_utt2" in batch.utt_ids and crash:
            raise RuntimeError("simulated crash")
        calls.extend(batch.utt_ids)
        return original(self, batch)

    crash = True
    monkeypatch.setattr(ClippingScorer, "score_batch", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path, manifest)
    work = tmp_path / "scores.parquet.shards" / "speech"
    # speech shards of 2 by key: [broken, short], [spk_utt0, spk_utt1], [spk_utt2]: the last one crashed
    assert sorted(p.name for p in work.glob("*.done.json")) == ["shard-00000-of-00003.done.json",
                                                                 "shard-00001-of-00003.done.json"]
    crash, calls[:] = False, []
    assert _run(tmp_path, manifest) == 0
    # speech: only the unfinished shard; noise (whose clipping scorer is a ClippingScorer too) had not started
    assert [c for c in calls if c.startswith("speech:")] == ["speech:spk_utt2"]
    assert sorted(c for c in calls if not c.startswith("speech:")) == [
        "noise:hum", "noise:plain", "noise:with_speech", "wind_noise:gust"]
    assert not (tmp_path / "scores.parquet.shards").exists()
    assert sha256_file(tmp_path / "scores.parquet") == sha256_file(scored / "scores.parquet")
    assert (tmp_path / "metrics.json").read_bytes() == (scored / "metrics.json").read_bytes()
    settings = read_source_settings(tmp_path / "scores.parquet")
    assert settings["schema_version"] == 1 and settings["sources_sha256"] == sha256_file(manifest)


def test_process_pool_gives_the_same_bytes_as_one_process(sources, tmp_path: Path):
    """Two spawned workers (the job pickled into them) write the table one in-process worker writes."""
    manifest, _ = sources
    light = ("source_score.speech.scorers=[bandwidth, vad, clipping, embedding]",
             "score.ref_quality.weights={ref_bandwidth_ratio: 1.0}")
    assert _run(tmp_path, manifest, *light, out="one.parquet") == 0
    assert _run(tmp_path, manifest, *light, "source_score.num_workers=2", out="two.parquet") == 0
    assert sha256_file(tmp_path / "one.parquet") == sha256_file(tmp_path / "two.parquet")
    assert "ref_dnsmos_ovrl" not in pq.read_schema(tmp_path / "one.parquet").names


@pytest.mark.parametrize(("override", "key"), [
    ("source_score.noise.max_speech_ratio=1.5", "source_score.noise.max_speech_ratio"),
    ("source_score.speech.scorers=[dnsmos, sisdr]", "source_score.speech.scorers[1]"),
    ("source_score.noise.scorers=[level, dnsmos]", "source_score.noise.scorers[1]"),
    ("source_score.rir.scorers=[decay, decay]", "source_score.rir.scorers"),
    ("source_score.shard_size=0", "source_score.shard_size"),
    ("source_score.executor=spark", "source_score.executor"),
    ("source_score.speech.scorers=[bandwidth]", "score.ref_quality.weights.ref_dnsmos_ovrl"),
    ("score.options.vad.threshold=2.0", "score.options.vad.threshold"),
    ("source_score.noise.max_speech_ration=0.1", "source_score.noise.max_speech_ration"),
])
def test_params_errors_name_the_key(sources, tmp_path: Path, capsys, override: str, key: str):
    manifest, _ = sources
    assert _run(tmp_path, manifest, override) == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "scores.parquet").exists()


def test_missing_manifest_and_bad_rows_are_clear_errors(tmp_path: Path, capsys):
    assert _run(tmp_path, tmp_path / "absent.jsonl") == 2
    assert "absent.jsonl' does not exist" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text(json.dumps({"source_id": "x", "kind": "music", "path": "a.wav", "sr": 16000,
                                                    "duration_sec": 1.0, "split": "train", "schema_version": 1}) + "\n")
    assert _run(tmp_path, tmp_path / "bad.jsonl") == 2
    assert "bad.jsonl:1: kind 'music'" in capsys.readouterr().err


def test_written_table_has_no_pandas_metadata(scored: Path):
    meta = pq.read_schema(scored / "scores.parquet").metadata
    assert b"pandas" not in meta and b"curator.source_scores.schema_version" in meta


"""Registry, atomic I/O, manifest schema, audio helpers and shared metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curator.audio import AudioError, load_audio, resample, save_audio
from curator.contract.manifest import ManifestError, Utterance, iter_manifest, read_manifest, write_manifest
from curator.io import atomic_open, executable, read_json, sha256_file, write_json
from curator.metrics import estoi, pesq_score, si_sdr, snr
from curator.registry import Registry


def test_registry_rejects_duplicates_and_lists_choices():
    reg: Registry[type] = Registry("selector")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and "a" in reg
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a")(type("B", (), {}))
    with pytest.raises(KeyError, match="unknown selector 'b'; valid choices: a"):
        reg.get("b")


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"b": 1, "a": 2})
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("partial")
        raise RuntimeError("killed")
    assert read_json(target) == {"a": 2, "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert target.read_text().index('"a"') < target.read_text().index('"b"')
    assert len(sha256_file(target)) == 64


def _row(i: int, **kw) -> dict:
    row = {"utt_id": f"u{i}", "path": f"a/{i}.wav", "duration_sec": 1.5, "sr": 16000, "language": "en",
           "distortion": "noise", "split": "train"}
    row.update(kw)
    return row


def test_manifest_round_trip_keeps_extra_fields_in_custom(tmp_path):
    path = tmp_path / "m.jsonl"
    n = write_manifest(path, [_row(0, clean_path="c/0.wav", augmentations=["clipping"], mic="x"), _row(1)])
    assert n == 2
    utts = list(iter_manifest(path))
    assert utts[0].clean_path == "c/0.wav" and utts[0].custom == {"mic": "x"}
    df = read_manifest(path)
    assert list(df["utt_id"]) == ["u0", "u1"] and df.columns[0] == "utt_id"
    assert isinstance(utts[1], Utterance) and utts[1].augmentations == []


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"m.jsonl:1: not valid JSON"),
        (json.dumps({"utt_id": "x"}), r"m.jsonl:1: missing field\(s\) path"),
        (json.dumps(_row(0, duration_sec=-1)), r"m.jsonl:1: duration_sec must be a positive"),
        (json.dumps(_row(0, sr="16k")), r"m.jsonl:1: field 'sr' has type str"),
        (json.dumps(_row(0, split="val")), r"m.jsonl:1: split 'val' is not one of"),
        (json.dumps(_row(0)) + "\n" + json.dumps(_row(0)), r"m.jsonl:2: duplicate utt_id 'u0'"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, line, match):
    path = tmp_path / "m.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ManifestError, match=match):
        list(iter_manifest(path))


def test_write_manifest_rejects_duplicates(tmp_path):
    with pytest.raises(ManifestError, match="duplicate utt_id 'u0'"):
        write_manifest(tmp_path / "m.jsonl", [_row(0), _row(0)])
    assert not (tmp_path / "m.jsonl").exists()


def test_audio_round_trip_resample_and_errors(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    save_audio(tmp_path / "a.flac", x, sr)
    y, sr_y = load_audio(tmp_path / "a.flac")
    assert sr_y == sr and np.max(np.abs(y - x)) < 1e-3
    z, sr_z = load_audio(tmp_path / "a.flac", sr=8000)
    assert sr_z == 8000 and len(z) == 8000
    assert len(resample(x, sr, 48000)) == 48000
    (tmp_path / "bad.wav").write_bytes(b"RIFF....garbage")
    with pytest.raises(AudioError, match="bad.wav"):
        load_audio(tmp_path / "bad.wav")


def test_metrics_orderings():
    rng = np.random.default_rng(0)
    sr = 16000
    clean = rng.standard_normal(2 * sr).astype(np.float32) * np.sin(np.linspace(0, 20, 2 * sr)) ** 2
    mild = clean + 0.05 * rng.standard_normal(clean.shape)
    harsh = clean + 1.0 * rng.standard_normal(clean.shape)
    assert si_sdr(mild, clean) > si_sdr(harsh, clean)
    assert abs(si_sdr(2.0 * clean, clean)) > 60  # scale-invariant
    zero_mean = clean - clean.mean()
    assert si_sdr(zero_mean + 0.5, zero_mean) > 60  # a DC offset is removed from both signals first
    assert snr(mild, clean) > snr(harsh, clean)
    assert estoi(mild, clean, sr) > estoi(harsh, clean, sr)
    assert pesq_score(mild, clean, sr) > pesq_score(harsh, clean, sr)
    assert np.isnan(estoi(clean[:100], clean[:100], sr))
    assert np.isnan(pesq_score(np.zeros(sr), np.zeros(sr), sr))


def test_batched_si_sdr_matches_single_and_masks_padding():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(800), rng.standard_normal(500)
    na, nb = a + 0.3 * rng.standard_normal(800), b + 0.1 * rng.standard_normal(500)
    est = np.zeros((2, 800))
    ref = np.zeros((2, 800))
    est[0], ref[0] = na, a
    est[1, :500], ref[1, :500] = nb, b
    est[1, 500:] = 9.0  # padding must be ignored
    out = si_sdr(est, ref, lengths=np.array([800, 500]))
    np.testing.assert_allclose(out, [si_sdr(na, a), si_sdr(nb, b)], rtol=1e-10)


def test_max_hours_mask_is_seeded_order_free_and_within_the_cap():
    from curator.contract.filters import max_hours_mask

    ids = np.array([f"u{i:03d}" for i in range(200)], dtype=object)
    dur = np.random.default_rng(0).uniform(1, 10, 200)
    mask = max_hours_mask(ids, dur, 0.1, seed=3)
    assert 0 < mask.sum() < 200 and dur[mask].sum() / 3600 <= 0.1
    perm = np.random.default_rng(1).permutation(200)
    assert set(ids[perm][max_hours_mask(ids[perm], dur[perm], 0.1, seed=3)]) == set(ids[mask])
    assert set(ids[max_hours_mask(ids, dur, 0.1, seed=4)]) != set(ids[mask])


def test_atomic_outputs_get_the_normal_file_mode(tmp_path):
    from curator.io import current_umask, write_json

    write_json(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_manifest_rows_of_another_schema_version_are_named(tmp_path):
    from curator.contract.manifest import SCHEMA_VERSION, ManifestError, iter_manifest, write_manifest

    path = tmp_path / "m.jsonl"
    write_manifest(path, [_row(0)])
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert [u.utt_id for u in iter_manifest(path)] == ["u0"]
    path.write_text(json.dumps({**_row(0), "schema_version": SCHEMA_VERSION - 1}) + "\n")
    with pytest.raises(ManifestError, match=rf"m.jsonl:1' has schema version {SCHEMA_VERSION - 1}.*dvc repro manifest"):
        list(iter_manifest(path))
    path.write_text(json.dumps(_row(0)) + "\n")  # the spec's base row (another tool's manifest): read as is
    assert [u.utt_id for u in iter_manifest(path)] == ["u0"]


def test_curated_sidecar_of_another_schema_version_is_named(tmp_path):
    from curator.contract.curated import SCHEMA_VERSION, meta_path, read_meta
    from curator.contract.versions import SchemaVersionError

    csv = tmp_path / "curated_train.csv"
    csv.write_text("utt_id\nu0\n")
    assert read_meta(csv) is None  # a list made elsewhere: no sidecar, nothing to check
    meta_path(csv).write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(SchemaVersionError, match="newer than the version"):
        read_meta(csv)
    meta_path(csv).write_text(json.dumps({"n_selected": 1}))
    with pytest.raises(SchemaVersionError, match="has no schema version.*dvc repro select"):
        read_meta(csv)


def test_executable_is_read_from_the_working_directory(tmp_path, monkeypatch):
    """A param naming an interpreter works from any folder a subprocess starts in; a wrong one is named."""
    import os
    import sys

    from curator.datasets.simulation.official import OfficialSimulationError, run_official_simulation

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "py").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (tmp_path / "bin" / "py").chmod(0o755)
    assert executable("bin/py", "x.python") == str(tmp_path / "bin" / "py")
    assert os.path.isabs(executable("sh", "x.python"))
    with pytest.raises(FileNotFoundError, match=r"x\.python = 'bin/nope' is not an executable program"):
        executable("bin/nope", "x.python")
    repo = tmp_path / "checkout"
    for script in ("simulation/generate_data_param.py", "simulation/simulate_data_from_param.py", "c.yaml"):
        (repo / script).parent.mkdir(parents=True, exist_ok=True)
        (repo / script).write_text("")
    with pytest.raises(OfficialSimulationError, match=r"dataset\.urgent2026\.simulate\.python = 'bin/nope'"):
        run_official_simulation("bin/nope", repo, "c.yaml", tmp_path / "out", tmp_path / "lists", 1, False)


def test_float_files_are_the_same_bytes_when_written_later(tmp_path):
    """libsndfile stamps float WAV files with the time of writing (PEAK chunk) unless told not to."""
    import time

    import soundfile as sf

    from curator.audio import save_audio

    x = np.random.default_rng(0).normal(0, 0.1, (2, 800)).astype(np.float32)
    save_audio(tmp_path / "a.wav", x, 16000, subtype="FLOAT")
    time.sleep(1.1)
    save_audio(tmp_path / "b.wav", x, 16000, subtype="FLOAT")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    y, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == 16000 and np.array_equal(y.T, x)


def test_dvc_reads_its_files_with_the_c_parser_and_the_benchmark_times_it(tmp_path, capsys):
    """requirements.txt's ruamel.yaml.clib is what DVC's safe loads use (2-3x faster on the 630 KB dvc.lock);
    bench_dvc.py reports it and times each YAML step DVC takes."""
    import importlib.util
    from pathlib import Path

    from ruamel.yaml import YAML

    assert YAML(typ="safe").Parser.__name__ == "CParser", "ruamel.yaml.clib is missing: DVC parses in pure Python"
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dvc.py"
    spec = importlib.util.spec_from_file_location("bench_dvc", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  a:\n    cmd: echo a\n    outs:\n    - path: x\n      md5: 0\n")
    assert bench.main(["--lock", str(lock), "--no-dvc", "--repeat", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lock"]["stages"] == 1 and report["yaml"]["c_loader"] is True
    assert {"safe_load_s", "safe_load_pure_python_s", "round_trip_load_s", "dump_s"} <= set(report["yaml"])

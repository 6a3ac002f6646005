"""The score CLI writes the contract table: columns, types, order, metadata, metrics; identical bytes on rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curator.contract.scores import SCHEMA_VERSION, read_settings
from curator.io import read_json, sha256_file
from curator.scoring.cli import main, split_overrides

from .conftest import LIGHT, NO_PROBE

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

PARAMS = str(TEST_PARAMS)
CONTRACT = {
    "utt_id": pa.string(), "path": pa.string(), "clean_path": pa.string(), "duration_sec": pa.float64(),
    "sr": pa.int64(), "language": pa.string(), "distortion": pa.string(), "speaker": pa.string(),
    "split": pa.string(), "status": pa.string(), "in_sisdr": pa.float64(), "in_estoi": pa.float64(),
    "in_pesq": pa.float64(), "in_snr": pa.float64(), "loss_proxy": pa.float64(), "ref_quality": pa.float64(),
}


def run(manifest: Path, out: Path, *overrides: str) -> dict:
    metrics = out.with_suffix(".json")
    assert main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(out), "--metrics", str(metrics),
                 *NO_PROBE, *overrides]) == 0
    return read_json(metrics)


def test_split_overrides_takes_out_the_manifest():
    assert split_overrides(["data.manifest=a.jsonl", "score.batch_size=8"]) == ("a.jsonl", ["score.batch_size=8"])


def test_table_follows_the_contract(corpus, tmp_path: Path):
    manifest, rows = corpus
    m = run(manifest, tmp_path / "s.parquet", "score.num_workers=1")
    table = pq.read_table(tmp_path / "s.parquet")
    for name, typ in CONTRACT.items():
        assert table.schema.field(name).type == typ, name
    embed = table.schema.field("ssl_embed").type
    assert pa.types.is_fixed_size_list(embed) and embed.value_type == pa.float32()
    ids = table.column("utt_id").to_pylist()
    assert ids == sorted(r["utt_id"] for r in rows)
    df = table.to_pandas()
    assert (df["status"] == "ok").all()
    assert np.isfinite(df[["in_sisdr", "in_estoi", "in_pesq", "in_snr", "loss_proxy"]].to_numpy()).all()
    assert df["loss_proxy"].between(0, 1).all() and df["ref_quality"].between(0, 1).all()
    settings = read_settings(tmp_path / "s.parquet")
    assert settings["schema_version"] == SCHEMA_VERSION
    assert set(settings["scorers"]) == {"dnsmos", "bandwidth", "vad", "clipping", "sisdr", "snr", "estoi", "pesq",
                                        "embedding"}
    for col in ("mos_dns", "ref_dnsmos_sig", "ref_dnsmos_bak", "ref_dnsmos_ovrl", "ref_bandwidth_hz", "ref_bandwidth_ratio",
                "ref_speech_ratio", "ref_clip_ratio"):
        assert table.schema.field(col).type == pa.float64(), col
        assert df[col].notna().all(), col
    np.testing.assert_array_equal(df["mos_dns"], df["ref_dnsmos_ovrl"])
    assert settings["manifest_sha256"] == sha256_file(manifest)
    assert str(tmp_path) not in json.dumps(settings)  # no absolute paths in the metadata
    assert m["rows_scored"] == len(rows) and m["status_counts"] == {"ok": len(rows)}
    speed = read_json(tmp_path / "timings" / "s.json")  # wall-clock figures live apart from the metrics
    assert speed["times_realtime"] > 0 and set(speed["scorer_seconds"]) == set(settings["scorers"])
    assert "wall_seconds" not in m


def test_same_bytes_whatever_the_worker_count(corpus, tmp_path: Path):
    manifest, _ = corpus
    run(manifest, tmp_path / "a.parquet", "score.num_workers=1", "score.shard_size=4", *LIGHT)
    run(manifest, tmp_path / "b.parquet", "score.num_workers=2", "score.shard_size=4", *LIGHT)
    assert sha256_file(tmp_path / "a.parquet") == sha256_file(tmp_path / "b.parquet")
    assert not (tmp_path / "a.parquet.shards").exists()  # shards are removed after assembly


def test_filters_are_honoured(corpus, tmp_path: Path):
    manifest, rows = corpus
    m = run(manifest, tmp_path / "s.parquet", "score.num_workers=1", *LIGHT, "data.filters.languages=[en]",
            "data.filters.sample_rates=[8000, 16000]")
    df = pq.read_table(tmp_path / "s.parquet").to_pandas()
    assert set(df["language"]) == {"en"} and set(df["sr"]) == {8000}
    assert m["rows_filtered_out"]["language"] == sum(r["language"] != "en" for r in rows)


def test_bad_params_fail_before_work(corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    manifest, _ = corpus
    assert main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(tmp_path / "s.parquet"),
                 "score.scorers=[sisdr, dnsmoss]"]) == 2
    assert "dnsmoss" in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_missing_manifest_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--config", PARAMS, f"data.manifest={tmp_path}/nope.jsonl", "--out", str(tmp_path / "s.pq")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err

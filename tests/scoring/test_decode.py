"""Bad input never crashes scoring: every case gets its status, good rows are untouched."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from curator.io import read_json
from curator.scoring.cli import main
from curator.scoring.decode import DecodeRules, decode_pair, rms_dbfs

from .conftest import LIGHT

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

RULES = DecodeRules(min_duration_sec=0.5, silence_dbfs=-60.0, max_length_mismatch_sec=0.05)


def test_every_bad_input_gets_its_status(mixed_corpus, tmp_path: Path):
    from curator.contract.manifest import read_manifest

    manifest, expected = mixed_corpus
    for row in read_manifest(manifest).to_dict("records"):
        row["clean_path"] = row["clean_path"] if isinstance(row["clean_path"], str) else None
        assert decode_pair(row, RULES).status == expected[row["utt_id"]], row["utt_id"]


def test_speech_free_pair_is_ok_and_flagged(mixed_corpus):
    from curator.contract.manifest import read_manifest

    manifest, _ = mixed_corpus
    row = read_manifest(manifest).set_index("utt_id").loc["bad_speech_free"].to_dict()
    decoded = decode_pair(row, RULES)
    assert decoded.status == "ok" and decoded.speech_free
    assert rms_dbfs(decoded.clean) == float("-inf")


def test_cli_keeps_rejected_rows_with_nan_scores_and_counts_them(mixed_corpus, tmp_path: Path):
    manifest, expected = mixed_corpus
    out, metrics = tmp_path / "s.parquet", tmp_path / "m.json"
    rc = main(["--config", str(TEST_PARAMS), f"data.manifest={manifest}",
               "--out", str(out), "--metrics", str(metrics), "score.num_workers=1", "score.shard_size=5", *LIGHT])
    assert rc == 0
    df = pq.read_table(out).to_pandas().set_index("utt_id")
    assert df["status"].to_dict() == expected
    rejected = df[df["status"] != "ok"]
    assert rejected[["in_sisdr", "in_pesq", "loss_proxy"]].isna().all().all()
    assert rejected["ssl_embed"].isna().all()
    free = df.loc["bad_speech_free"]
    assert free[["in_sisdr", "in_snr", "in_estoi", "in_pesq"]].isna().all() and free["ssl_embed"] is not None
    assert bool(free["speech_free"]) and free["loss_proxy"] == 1.0  # score.loss_proxy.speech_free_hardness
    assert not df.drop(index="bad_speech_free")["speech_free"].any()
    m = read_json(metrics)
    assert m["rejects"] == sum(s != "ok" for s in expected.values())
    assert m["status_counts"]["nan"] == 1 and m["status_counts"]["unreadable"] == 1
    assert m["speech_free_ok"] == 1 and m["rows_scored"] == len(expected)

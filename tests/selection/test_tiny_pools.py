"""Tiny pools through the select CLI: they work, or fail with an error naming the real cause.

A one-row pool used to fail with "the score stage is broken" because centring a single embedding on the pool's
mean (itself) left a zero vector, counted as an invalid embedding.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from curator.contract.scores import write_table
from curator.selection.cli import main
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def tiny(n: int, seed: int = 0) -> pa.Table:
    return synthetic_scores(SyntheticSpec(n=n, dim=16, seed=seed, rows_per_source=1))[0]


def select(tmp_path: Path, table: pa.Table, *overrides: str) -> tuple[int, Path]:
    write_table(table, tmp_path / "scores.parquet")
    argv = ["--config", str(TEST_PARAMS), "--scores", str(tmp_path / "scores.parquet"),
            "--out", str(tmp_path / "curated.csv"), "--metrics", str(tmp_path / "select.json"),
            "--plots-dir", str(tmp_path / "plots"), "select.quality_gate.min_score=null", *overrides]
    return main(argv), tmp_path


@pytest.mark.parametrize("strategy", ["cvar", "random", "coverage_only", "mos_threshold"])
def test_a_one_row_pool_is_selected_whole(tmp_path: Path, strategy: str) -> None:
    table = tiny(1)
    code, out = select(tmp_path, table, f"select.name={strategy}", "select.mos_threshold.min_score=0.0")
    assert code == 0
    frame = pd.read_csv(out / "curated.csv")
    assert frame["utt_id"].tolist() == ["utt0"]
    metrics = json.loads((out / "select.json").read_text())
    assert metrics["n_selected"] == 1 and metrics["pool"]["rows"] == 1 and metrics["excluded"] == {}
    assert metrics["hours_selected"] == pytest.approx(table["duration_sec"][0].as_py() / 3600)
    assert metrics["warnings"]["budget_clipped"] == 1  # K_hours 0.08 > the pool: clipped, and said so
    assert metrics["tail"]["speech_rows"] == 1 and metrics["speech_free"]["rows"] == 0


def test_a_one_row_pool_the_gate_removes_names_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    table = tiny(1)
    quality = table["ref_quality"][0].as_py()
    code, _ = select(tmp_path, table, f"select.quality_gate.min_score={quality + 0.01}")
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(r"quality gate \(ref_quality < [0-9.]+\) removed 1,", err), err
    assert "select.quality_gate.min_score" in err and "score stage" not in err


def test_identical_embeddings_name_centring_not_the_score_stage(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    table = tiny(2)
    emb = table["ssl_embed"].combine_chunks().flatten().to_numpy().reshape(2, -1).copy()
    emb[1] = emb[0]
    twins = table.set_column(table.schema.get_field_index("ssl_embed"), "ssl_embed",
                             pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1]))
    code, _ = select(tmp_path, twins)
    assert code == 2
    err = capsys.readouterr().err
    assert "2 of 2 usable rows have an embedding equal to the pool's mean" in err
    assert "select.diversity.center=false" in err and "score stage is broken" not in err
    code, out = select(tmp_path, twins, "select.diversity.center=false")
    assert code == 0
    metrics = json.loads((out / "select.json").read_text())
    assert metrics["n_selected"] == 1 and metrics["diversity"]["blocked_rows"] == 1  # the copy is a near-duplicate


def test_a_pool_of_one_speech_free_row_has_no_tail_figures(tmp_path: Path) -> None:
    df = tiny(1).drop(["ssl_embed"]).to_pandas()
    df["distortion"], df["loss_proxy"], df["speech_free"] = "speech_free", 1.0, True
    df[["ref_quality", "mos_dns"]] = np.nan
    table = pa.Table.from_pandas(df, preserve_index=False).append_column("ssl_embed", tiny(1)["ssl_embed"])
    code, out = select(tmp_path, table, "select.quality_gate.min_score=0.8")
    assert code == 0
    metrics = json.loads((out / "select.json").read_text())
    assert metrics["speech_free"]["selected_rows"] == 1 and metrics["speech_free"]["share_selected"] == 1.0
    assert metrics["tail"]["speech_rows"] == 0  # the constant loss of a noise-only row is no tail
    assert metrics["tail"]["var_pool"] is None and metrics["tail"]["loss_cvar_pool"] is None
    assert metrics["tail"]["loss_cvar"] is None

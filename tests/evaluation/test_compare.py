"""Comparing systems from per-utterance Parquet files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from curator.evaluation.compare import main


def write_system(root: Path, name: str, pesq: list[float], si_sdr: list[float], utts: list[str]) -> Path:
    path = root / name / "per_utt.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"split": "test", "utt_id": utts, "pesq": pesq, "si_sdr": si_sdr,
                  "noisy_pesq": [1.0] * len(utts), "noisy_si_sdr": [0.0] * len(utts)}).to_parquet(path)
    return path


def test_ranks_systems_and_writes_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    utts = ["u1", "u2"]
    a = write_system(tmp_path, "cvar", [3.0, 3.0], [10.0, 12.0], utts)
    b = write_system(tmp_path, "random", [2.0, 2.0], [12.0, 14.0], utts)
    out = tmp_path / "ranks.csv"
    assert main([str(a), str(b), "--with_noisy", "--out", str(out)]) == 0
    table = pd.read_csv(out, index_col="system")
    # pesq: cvar 1, random 2, noisy 3; si_sdr: random 1, cvar 2, noisy 3 -> intrusive means 1.5, 1.5, 3
    assert table.loc["cvar", "overall"] == 1.5 and table.loc["random", "overall"] == 1.5
    assert table.loc["noisy_input", "overall"] == 3.0
    assert "cvar" in capsys.readouterr().out


def test_different_utterances_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_system(tmp_path, "a", [3.0], [1.0], ["u1"])
    b = write_system(tmp_path, "b", [3.0], [1.0], ["u2"])
    assert main([str(a), str(b)]) == 2
    assert "scored different utterances" in capsys.readouterr().err

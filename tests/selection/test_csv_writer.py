"""The curated CSV writer gives exactly pandas' ``to_csv(index=False, float_format="%.9g")`` bytes."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from curator.selection import cli


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    loss = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n)
    loss[::7] = np.nan
    mos = rng.random(n).astype(np.float32)
    mos[::5] = np.nan
    strings = pa.array([None if i % 11 == 0 else f'id,{i} "q"' if i % 13 == 0 else f"u{i:06d}" for i in range(n)])
    return pd.DataFrame({
        "utt_id": pa.Table.from_arrays([strings], ["s"]).to_pandas()["s"],
        "hours": rng.random(n) / 3600.0,
        "order": np.arange(n),
        "in_quota": rng.random(n) < 0.5,
        "loss_proxy": loss,
        "mos": mos,
        "extreme": np.where(np.arange(n) % 3 == 0, np.inf, -0.0),
    })


@pytest.mark.parametrize("n", [0, 1, 5, 1000])
def test_write_csv_matches_pandas(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "CSV_BLOCK_ROWS", 64)  # several blocks at n = 1000
    frame = _frame(n)
    expected = io.StringIO()
    frame.to_csv(expected, index=False, float_format=cli.CSV_FLOAT_FORMAT)
    got = io.StringIO()
    cli.write_csv(frame, got)
    assert got.getvalue() == expected.getvalue()
    assert got.getvalue().count("\n") == n + 1

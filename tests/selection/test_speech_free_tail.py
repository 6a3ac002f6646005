"""Tail statistics are over speech rows: speech-free rows (constant loss_proxy) are reported apart.

Through the select CLI, on a scores table where speech-free rows carry the constant ``loss_proxy`` 1.0 that
the score stage gives them; every tail figure in ``metrics/select.json`` is checked against a hand computation
over the speech rows alone (and shown to differ from the same figure over all rows, so the test can fail).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from curator.contract.scores import write_table
from curator.selection.cli import main
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
ALPHA = 0.1
N_FREE = 30


def with_speech_free(n: int, n_free: int, seed: int) -> tuple[pa.Table, pd.DataFrame]:
    """A synthetic scores table whose first ``n_free`` rows are speech-free, as the score stage writes them."""
    table, truth = synthetic_scores(SyntheticSpec(n=n, dim=16, seed=seed, rows_per_source=30))
    free = np.zeros(n, dtype=bool)
    free[:n_free] = True
    df = table.drop(["ssl_embed"]).to_pandas()
    df.loc[free, "distortion"] = "speech_free"
    df.loc[free, "loss_proxy"] = 1.0
    df.loc[free, ["ref_quality", "mos_dns"]] = np.nan
    df["speech_free"] = free
    out = pa.Table.from_pandas(df, preserve_index=False).append_column("ssl_embed", table["ssl_embed"])
    return out, truth


def hand_tail(loss: np.ndarray, hours: np.ndarray, alpha: float) -> tuple[float, float]:
    """(VaR, CVaR) of one set of rows, written out: hardest first, by cumulative hours."""
    order = sorted(range(len(loss)), key=lambda i: (-loss[i], i))
    total = sum(hours)
    var, cum, mass, weighted = None, 0.0, 0.0, 0.0
    for i in order:
        if cum + hours[i] / 2 <= alpha * total:  # the utterance's middle lies inside the alpha mass
            var = loss[i]
        take = min(hours[i], max(alpha * total - cum, 0.0))
        mass += take
        weighted += take * loss[i]
        cum += hours[i]
    return var, weighted / mass


def hand_slice_tails(df: pd.DataFrame, alpha: float) -> set[str]:
    """Utterances in the per-slice alpha-tails (hours midpoint rule), over the rows of ``df``."""
    tail = set()
    for _, g in df.groupby("distortion"):
        g = g.sort_values(["loss_proxy", "utt_id"], ascending=[False, True])
        cum = g["hours"].cumsum() - g["hours"] / 2
        tail |= set(g.loc[cum <= alpha * g["hours"].sum(), "utt_id"])
    return tail


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("speech_free_tail")
    table, truth = with_speech_free(300, N_FREE, seed=3)
    write_table(table, root / "scores.parquet")
    truth.to_csv(root / "truth.csv", index=False)
    params = yaml.safe_load(TEST_PARAMS.read_text())
    params["select"].update({"K_hours": 0.25, "alpha": ALPHA})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    argv = ["--config", str(root / "params.yaml"), "--scores", str(root / "scores.parquet"), "--quotas",
            str(root / "params.yaml"), "--truth", str(root / "truth.csv"), "--out", str(root / "curated.csv"),
            "--metrics", str(root / "select.json"), "--plots-dir", str(root / "plots")]
    assert main(argv) == 0
    pool = table.drop(["ssl_embed"]).to_pandas()
    pool["hours"] = pool["duration_sec"] / 3600.0
    pool["chosen"] = pool["utt_id"].isin(pd.read_csv(root / "curated.csv")["utt_id"])
    return root, pool.sort_values("utt_id").reset_index(drop=True)


def test_tail_figures_are_over_speech_rows_only(selected: tuple[Path, pd.DataFrame]) -> None:
    root, pool = selected
    metrics = json.loads((root / "select.json").read_text())
    tail = metrics["tail"]
    speech = pool[~pool["speech_free"]]
    var, cvar_pool = hand_tail(speech["loss_proxy"].to_numpy(), speech["hours"].to_numpy(), ALPHA)
    assert tail["speech_rows"] == len(speech) == 300 - N_FREE
    assert tail["speech_hours"] == pytest.approx(speech["hours"].sum(), rel=1e-12)
    assert tail["var_pool"] == pytest.approx(var, rel=1e-12)
    assert tail["loss_cvar_pool"] == pytest.approx(cvar_pool, rel=1e-9)
    assert tail["loss_mean_pool"] == pytest.approx(np.average(speech["loss_proxy"], weights=speech["hours"]))
    picked = speech[speech["chosen"]]
    _, cvar_sel = hand_tail(picked["loss_proxy"].to_numpy(), picked["hours"].to_numpy(), ALPHA)
    assert tail["loss_cvar"] == pytest.approx(cvar_sel, rel=1e-9)
    assert tail["loss_mean"] == pytest.approx(np.average(picked["loss_proxy"], weights=picked["hours"]))
    in_tail = hand_slice_tails(speech, ALPHA)
    tail_hours = speech.loc[speech["utt_id"].isin(in_tail), "hours"].sum()
    chosen_tail = speech.loc[speech["utt_id"].isin(in_tail) & speech["chosen"], "hours"].sum()
    assert tail["pool_tail_hours"] == pytest.approx(tail_hours, rel=1e-12)
    assert tail["tail_coverage"] == pytest.approx(chosen_tail / tail_hours, rel=1e-12)

    # the same figures over all rows would be dominated by the constant: the test sees the difference
    var_all, cvar_all = hand_tail(pool["loss_proxy"].to_numpy(), pool["hours"].to_numpy(), ALPHA)
    assert var_all == 1.0 and var < 1.0
    assert cvar_all > cvar_pool + 0.05


def test_speech_free_rows_are_reported_apart(selected: tuple[Path, pd.DataFrame]) -> None:
    root, pool = selected
    metrics = json.loads((root / "select.json").read_text())
    free = pool[pool["speech_free"]]
    block = metrics["speech_free"]
    assert block["rows"] == N_FREE and block["eligible_rows"] == N_FREE
    assert block["hours"] == pytest.approx(free["hours"].sum(), rel=1e-12)
    assert block["selected_rows"] == int(free["chosen"].sum()) > 0
    assert block["selected_hours"] == pytest.approx(free.loc[free["chosen"], "hours"].sum(), rel=1e-12)
    assert block["share_selected"] == pytest.approx(block["selected_hours"] / block["hours"], rel=1e-12)
    assert block["share_of_selection"] == pytest.approx(block["selected_hours"] / metrics["hours_selected"], rel=1e-9)
    meta = json.loads((root / "curated_meta.json").read_text())
    assert meta["speech_free"] == block
    assert metrics["tail"]["var_per_slice"]["speech_free"] is None  # no measured difficulty, no tail
    assert "in-sample" in metrics["imperfect_ref_share"]["threshold_note"]


def test_loss_histogram_leaves_speech_free_rows_out(selected: tuple[Path, pd.DataFrame]) -> None:
    root, pool = selected
    hist = pd.read_csv(root / "plots" / "loss_hist.csv")
    speech = pool[~pool["speech_free"]]
    assert hist["pool_hours"].sum() == pytest.approx(speech["hours"].sum(), rel=1e-5)
    assert hist["selected_hours"].sum() == pytest.approx(speech.loc[speech["chosen"], "hours"].sum(), rel=1e-5)
    assert hist["loss_proxy"].max() < speech["loss_proxy"].max()

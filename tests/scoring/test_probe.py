"""Probe-model loss: stable folds, a probe that learns, held-out losses for every row, merged into loss_proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curator.io import read_json, sha256_file
from curator.scoring.decode import DecodeRules
from curator.scoring.probe.cli import main
from curator.scoring.probe.fit import assign_folds, cross_fit, train_probe
from curator.scoring.probe.params import ProbeParams
from curator.scoring.runner import score_rows

from .conftest import score_params, speechlike
from .test_resume import rows_of

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

PARAMS = str(TEST_PARAMS)
TINY = ProbeParams(steps=30, batch_size=4, crop_sec=0.5, hidden=16, layers=1, train_utterances=8)
RULES = DecodeRules(0.5, -60.0, 0.05)


def test_folds_are_stable_balanced_and_order_free():
    ids = [f"u{i}" for i in range(400)]
    folds = assign_folds(ids, 3, seed=0)
    assert set(folds) == {0, 1, 2} and np.bincount(folds).min() > 100
    assert dict(zip(ids, folds, strict=True)) == dict(zip(ids[::-1], assign_folds(ids[::-1], 3, 0), strict=True))


def test_probe_learns_to_denoise():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(6):
        clean = speechlike(rng, 16000, 1.0)
        pairs.append(((clean + 0.05 * rng.standard_normal(clean.size)).astype(np.float32), clean))
    _, early = train_probe(pairs, ProbeParams(steps=20, batch_size=4, crop_sec=0.5, hidden=16, layers=1), seed=0)
    _, late = train_probe(pairs, ProbeParams(steps=150, batch_size=4, crop_sec=0.5, hidden=16, layers=1), seed=0)
    assert late < 0.8 * early


def test_cross_fit_scores_every_decodable_row_deterministically(mixed_corpus):
    manifest, expected = mixed_corpus
    rows = rows_of(manifest)
    losses, folds, statuses, reports = cross_fit(rows, TINY, RULES)
    again, _, _, _ = cross_fit(rows, TINY, RULES)
    np.testing.assert_array_equal(losses, again)
    assert statuses == [expected[r["utt_id"]] for r in rows]
    ok = np.array([s == "ok" for s in statuses])
    assert np.isfinite(losses[ok]).all() and np.isnan(losses[~ok]).all()
    assert len(reports) == 2 and all(r.train_utterances > 0 for r in reports)


def test_cli_output_mixes_into_loss_proxy(corpus, tmp_path: Path):
    manifest, _ = corpus
    out = tmp_path / "probe.parquet"
    overrides = [f"probe.{k}={v}" for k, v in {"steps": 30, "batch_size": 4, "crop_sec": 0.5, "hidden": 16,
                                                   "layers": 1}.items()]
    assert main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(out), "--metrics",
                 str(tmp_path / "p.json"), *overrides]) == 0
    probe = pq.read_table(out).to_pandas()
    assert list(probe.columns) == ["utt_id", "probe_loss", "probe_fold", "status"]
    assert probe["utt_id"].is_monotonic_increasing and probe["probe_loss"].notna().all()
    assert read_json(tmp_path / "p.json")["rows"] == len(probe)
    assert main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(tmp_path / "again.parquet"),
                 "--metrics", str(tmp_path / "p2.json"), *overrides]) == 0
    assert sha256_file(out) == sha256_file(tmp_path / "again.parquet")

    light = {"num_workers": 1, "scorers": "[bandwidth, sisdr]", "ref_quality.weights": "{ref_bandwidth_ratio: 1}",
             "loss_proxy.probe_path": str(out)}
    params = score_params(**light, **{"loss_proxy.weights": "{probe_loss: 1}"})
    result = score_rows(rows_of(manifest), params, tmp_path / "w")
    assert result.settings["probe_sha256"] == sha256_file(out)
    only_probe = result.table.to_pandas()
    lo, hi = params.loss_proxy.ranges["probe_loss"]
    expected = np.clip((probe["probe_loss"].to_numpy() - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(only_probe["loss_proxy"], expected, atol=1e-6)
    np.testing.assert_allclose(only_probe["probe_loss"], probe["probe_loss"])


def test_probe_weight_without_path_fails_before_work():
    from curator.config import ConfigError

    with pytest.raises(ConfigError, match="probe_path"):
        score_params(**{"loss_proxy.weights": "{probe_loss: 1}"})


def test_missing_probe_file_is_named_before_scoring(corpus, tmp_path: Path):
    from curator.scoring.base import ScoringError

    params = score_params(**{"loss_proxy.weights": "{probe_loss: 1}", "loss_proxy.probe_path": str(tmp_path / "no.pq")})
    with pytest.raises(ScoringError, match="run the probe stage"):
        score_rows(rows_of(corpus[0]), params, tmp_path / "w")
    assert not (tmp_path / "w").exists()

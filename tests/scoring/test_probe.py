"""Probe-model loss: stable folds, a probe that learns, held-out losses for every row, merged into loss_proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curator.io import read_json, sha256_file
from curator.scoring.decode import DecodeRules
from curator.scoring.probe.cli import main
from curator.scoring.probe.fit import assign_folds, cross_fit, train_probe
from curator.scoring.probe.params import ProbeParams
from curator.scoring.runner import _align, score_rows

from .conftest import score_params, speechlike
from .test_resume import rows_of

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

PARAMS = str(TEST_PARAMS)
TINY = ProbeParams(steps=30, batch_size=4, crop_sec=0.5, hidden=16, layers=1, train_utterances=8)
RULES = DecodeRules(0.5, -60.0, 0.05)


def test_probe_columns_align_by_utt_id_with_nan_where_unprobed():
    probe = pa.table({"utt_id": ["c", "a", "d"], "probe_holdout_loss": [3.0, 1.0, None]})
    got = _align(["a", "b", "c", "d"], probe, "probe_holdout_loss")
    np.testing.assert_array_equal(got, [1.0, np.nan, 3.0, np.nan])
    assert _align([], probe, "probe_holdout_loss").shape == (0,)


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
    result = cross_fit(rows, TINY, RULES)
    losses, statuses, reports = result.holdout, result.statuses, result.reports
    np.testing.assert_array_equal(losses, cross_fit(rows, TINY, RULES).holdout)
    assert statuses == [expected[r["utt_id"]] for r in rows]
    ok = np.array([s == "ok" for s in statuses])
    assert np.isfinite(losses[ok]).all() and np.isnan(losses[~ok]).all()
    assert len(reports) == 2 and all(r.train_utterances > 0 and r.skipped is None for r in reports)
    assert result.current is None and result.reducible is None  # holdout_loss ranking: no current model


def test_cli_output_mixes_into_loss_proxy(corpus, tmp_path: Path):
    manifest, _ = corpus
    out = tmp_path / "probe.parquet"
    overrides = [f"probe.{k}={v}" for k, v in {"steps": 30, "batch_size": 4, "crop_sec": 0.5, "hidden": 16,
                                                   "layers": 1}.items()]
    assert main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(out), "--metrics",
                 str(tmp_path / "p.json"), *overrides]) == 0
    probe = pq.read_table(out).to_pandas()
    assert list(probe.columns) == ["utt_id", "probe_holdout_loss", "probe_fold", "status"]
    assert probe["utt_id"].is_monotonic_increasing and probe["probe_holdout_loss"].notna().all()
    assert read_json(tmp_path / "p.json")["rows"] == len(probe)
    assert main(["--config", PARAMS, f"data.manifest={manifest}", "--out", str(tmp_path / "again.parquet"),
                 "--metrics", str(tmp_path / "p2.json"), *overrides]) == 0
    assert sha256_file(out) == sha256_file(tmp_path / "again.parquet")

    light = {"num_workers": 1, "scorers": "[bandwidth, sisdr]", "ref_quality.weights": "{ref_bandwidth_ratio: 1}",
             "loss_proxy.probe_path": str(out)}
    params = score_params(**light, **{"loss_proxy.weights": "{probe_holdout_loss: 1}"})
    result = score_rows(rows_of(manifest), params, tmp_path / "w")
    assert result.settings["probe_sha256"] == sha256_file(out)
    only_probe = result.table.to_pandas()
    lo, hi = params.loss_proxy.ranges["probe_holdout_loss"]
    expected = np.clip((probe["probe_holdout_loss"].to_numpy() - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(only_probe["loss_proxy"], expected, atol=1e-6)
    np.testing.assert_allclose(only_probe["probe_holdout_loss"], probe["probe_holdout_loss"])
    assert "probe_reducible_loss" not in only_probe
    assert result.probe_rows == len(probe)

    # a probe file of another manifest (no id in common) is an error naming it; a partial one is counted
    from curator.scoring.base import ScoringError

    foreign, part = tmp_path / "foreign.parquet", tmp_path / "part.parquet"
    pq.write_table(pq.read_table(out).set_column(0, "utt_id", pa.array([f"other-{i}" for i in range(len(probe))])),
                   foreign)
    with pytest.raises(ScoringError, match="has no row of this manifest.*rerun the probe stage"):
        score_rows(rows_of(manifest), score_params(**{**light, "loss_proxy.probe_path": str(foreign)},
                                                   **{"loss_proxy.weights": "{probe_holdout_loss: 1}"}), tmp_path / "wf")
    pq.write_table(pq.read_table(out).slice(1), part)
    partial = score_rows(rows_of(manifest), score_params(**{**light, "loss_proxy.probe_path": str(part)},
                                                         **{"loss_proxy.weights": "{probe_holdout_loss: 1}"}),
                         tmp_path / "wp")
    assert partial.probe_rows == len(probe) - 1

    # weighting the reducible loss of a holdout_loss run names the knob to turn
    reducible = score_params(**light, **{"loss_proxy.weights": "{probe_reducible_loss: 1}",
                                         "loss_proxy.ranges": "{probe_reducible_loss: [-0.05, 0.1]}"})
    with pytest.raises(ScoringError, match="probe.ranking=reducible_loss"):
        score_rows(rows_of(manifest), reducible, tmp_path / "w2")


def test_probe_weight_without_path_fails_before_work(corpus, tmp_path: Path):
    from curator.config import ConfigError
    from curator.scoring.base import ScoringError

    unresolved = score_params(**{"loss_proxy.weights": "{probe_holdout_loss: 1}"})
    with pytest.raises(ScoringError, match="probe_path"):  # a library caller must resolve null (the CLI does)
        score_rows(rows_of(corpus[0]), unresolved, tmp_path / "w")
    with pytest.raises(ConfigError, match="probe_holdout_loss .*probe_reducible_loss"):  # the old, ambiguous name
        score_params(**{"loss_proxy.weights": "{probe_loss: 1}", "loss_proxy.probe_path": "p.parquet"})


def test_missing_probe_file_is_named_before_scoring(corpus, tmp_path: Path):
    from curator.scoring.base import ScoringError

    params = score_params(**{"loss_proxy.weights": "{probe_holdout_loss: 1}",
                             "loss_proxy.probe_path": str(tmp_path / "no.pq")})
    with pytest.raises(ScoringError, match="run the probe stage"):
        score_rows(rows_of(corpus[0]), params, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def noisy_target_case(root: Path, n_learnable: int = 12) -> tuple[list[dict], str]:
    """``n_learnable`` speech-like pairs in white noise at 0 dB (a mask learns to remove it) and one noisy-target
    row: a quiet input (-50 dBFS white noise) whose "clean" target is loud white noise unrelated to it.

    For any mask in (0, 1) the noisy-target row's loss lies within ``mean |X|^c`` of ``mean |W|^c`` (X its
    quiet input, W its loud target), whichever probe scores it: its held-out loss is the largest of the pool,
    and its reducible loss (the difference of two such losses) is bounded by the tiny ``mean |X|^c``.
    """
    import soundfile as sf

    rng = np.random.default_rng(7)
    sr = 16000
    rows = []
    for i in range(n_learnable + 1):
        uid = f"utt{i:03d}"
        if i < n_learnable:
            clean = speechlike(rng, sr, 1.0)
            noisy = clean + np.sqrt(np.mean(clean**2)) * rng.standard_normal(clean.size).astype(np.float32)
        else:
            uid = "noisy_target"
            noisy = 0.003 * rng.standard_normal(sr).astype(np.float32)
            clean = np.clip(0.25 * rng.standard_normal(sr), -1, 1).astype(np.float32)
        sf.write(str(root / f"{uid}_noisy.wav"), noisy, sr, subtype="FLOAT")
        sf.write(str(root / f"{uid}_clean.wav"), clean, sr, subtype="FLOAT")
        rows.append({"utt_id": uid, "path": str(root / f"{uid}_noisy.wav"), "clean_path": str(root / f"{uid}_clean.wav"),
                     "duration_sec": 1.0, "sr": sr, "language": "en", "distortion": "noise", "split": "train"})
    return rows, "noisy_target"


REDUCIBLE = ProbeParams(steps=150, current_steps=2, batch_size=4, crop_sec=0.5, hidden=16, layers=1,
                        train_utterances=50, compress=1.0, ranking="reducible_loss")
"""compress = 1 (plain magnitudes) keeps the noisy-target row's bound ``mean |X|`` tiny next to the learnable
rows' gains; the current model stands 2 steps into training, the irreducible-loss probes 150."""


def test_reducible_loss_is_current_model_loss_minus_heldout_loss(tmp_path: Path):
    from curator.scoring.probe.fit import CURRENT_SEED_OFFSET, _decode, heldout_losses

    rows, _ = noisy_target_case(tmp_path)
    result = cross_fit(rows, REDUCIBLE, RULES)
    assert result.current is not None and np.isfinite(result.current).all() and np.isfinite(result.holdout).all()
    np.testing.assert_array_equal(result.reducible, result.current - result.holdout)
    # rebuild both models by hand: the irreducible one on the other fold, the current one on the row's own fold
    for fold in range(REDUCIBLE.folds):
        own = np.flatnonzero(result.folds == fold)
        other = np.flatnonzero(result.folds != fold)
        mine = _decode([rows[i] for i in own], RULES, REDUCIBLE.sample_rate, 1)
        theirs = _decode([rows[i] for i in other], RULES, REDUCIBLE.sample_rate, 1)
        irreducible, _ = train_probe([(n, c) for _, n, c in theirs], REDUCIBLE, seed=fold)
        current, _ = train_probe([(n, c) for _, n, c in mine], REDUCIBLE,
                                 seed=CURRENT_SEED_OFFSET + fold, steps=REDUCIBLE.current_steps)
        np.testing.assert_allclose(result.holdout[own], heldout_losses(irreducible, mine, 16), rtol=1e-12)
        np.testing.assert_allclose(result.current[own], heldout_losses(current, mine, 16), rtol=1e-12)
        np.testing.assert_allclose(result.reducible[own], heldout_losses(current, mine, 16)
                                   - heldout_losses(irreducible, mine, 16), rtol=1e-9, atol=1e-12)


def test_a_noisy_target_row_ranks_lower_by_reducible_loss_than_by_heldout_loss(tmp_path: Path):
    rows, noisy = noisy_target_case(tmp_path)
    result = cross_fit(rows, REDUCIBLE, RULES)
    i = [r["utt_id"] for r in rows].index(noisy)

    def rank(values: np.ndarray) -> int:  # 1 = ranked first (highest)
        return int((values > values[i]).sum()) + 1

    assert rank(result.holdout) == 1  # held-out loss puts the unpredictable target first
    bound = 3 * 0.003 * np.sqrt(np.sum(np.hanning(REDUCIBLE.n_fft) ** 2))  # 3 x the quiet input's mean |X|
    assert abs(result.reducible[i]) < bound
    assert rank(result.reducible) > len(rows) // 2  # reducible loss ranks it in the lower half


def test_probe_cli_writes_reducible_loss_and_the_score_stage_mixes_it_in(tmp_path: Path):
    rows, _ = noisy_target_case(tmp_path)
    from curator.contract.manifest import write_manifest

    write_manifest(tmp_path / "train.jsonl", rows)
    out = tmp_path / "probe.parquet"
    overrides = ["probe.steps=40", "probe.current_steps=5", "probe.batch_size=4", "probe.crop_sec=0.5",
                 "probe.hidden=16", "probe.layers=1", "probe.ranking=reducible_loss"]
    assert main(["--config", PARAMS, f"data.manifest={tmp_path / 'train.jsonl'}", "--out", str(out), "--metrics",
                 str(tmp_path / "p.json"), *overrides]) == 0
    probe = pq.read_table(out).to_pandas()
    assert list(probe.columns) == ["utt_id", "probe_holdout_loss", "probe_current_loss", "probe_reducible_loss",
                                   "probe_fold", "status"]
    np.testing.assert_allclose(probe["probe_reducible_loss"],
                               probe["probe_current_loss"] - probe["probe_holdout_loss"], atol=2e-6)
    metrics = read_json(tmp_path / "p.json")
    assert metrics["ranking"] == "reducible_loss" and metrics["unscored_rows"] == 0
    assert metrics["mean_probe_reducible_loss"] == pytest.approx(probe["probe_reducible_loss"].mean(), abs=1e-6)

    params = score_params(num_workers=1, scorers="[bandwidth, sisdr]", **{
        "ref_quality.weights": "{ref_bandwidth_ratio: 1}", "loss_proxy.probe_path": str(out),
        "loss_proxy.weights": "{probe_reducible_loss: 1}", "loss_proxy.ranges": "{probe_reducible_loss: [-0.5, 0.5]}"})
    table = score_rows(rows_of(tmp_path / "train.jsonl"), params, tmp_path / "w").table.to_pandas()
    merged = table.merge(probe, on="utt_id", suffixes=("", "_probe"))
    np.testing.assert_allclose(merged["probe_reducible_loss"], merged["probe_reducible_loss_probe"])
    np.testing.assert_allclose(merged["loss_proxy"], np.clip((merged["probe_reducible_loss"] + 0.5), 0, 1), atol=1e-6)
    assert "probe_holdout_loss" not in table  # only the weighted probe column is joined


def test_a_pool_too_small_for_every_fold_gets_nan_and_a_reason_not_an_abort(corpus, tmp_path: Path):
    manifest, rows = corpus
    from curator.contract.manifest import write_manifest

    one = tmp_path / "one.jsonl"
    write_manifest(one, rows[:1])
    out = tmp_path / "probe.parquet"
    assert main(["--config", PARAMS, f"data.manifest={one}", "--out", str(out), "--metrics", str(tmp_path / "p.json"),
                 "probe.steps=5", "probe.batch_size=2", "probe.crop_sec=0.5", "probe.hidden=8", "probe.layers=1"]) == 0
    probe = pq.read_table(out).to_pandas()
    assert len(probe) == 1 and np.isnan(probe["probe_holdout_loss"][0]) and probe["status"][0] == "ok"
    metrics = read_json(tmp_path / "p.json")
    assert metrics["unscored_rows"] == 1 and metrics["mean_probe_holdout_loss"] is None
    fold = int(probe["probe_fold"][0])
    reports = {r["fold"]: r for r in metrics["folds"]}
    assert reports[1 - fold]["skipped"].startswith("empty fold") and reports[1 - fold]["rows"] == 0
    assert "all 1 rows hash to this fold" in reports[fold]["skipped"]
    # the score stage mixes the rest of loss_proxy in: the NaN probe column drops out of the row's mean
    params = score_params(num_workers=1, scorers="[bandwidth, sisdr]", **{
        "ref_quality.weights": "{ref_bandwidth_ratio: 1}", "loss_proxy.probe_path": str(out),
        "loss_proxy.weights": "{in_sisdr: 1, probe_holdout_loss: 1}"})
    table = score_rows(rows_of(one), params, tmp_path / "w").table.to_pandas()
    lo, hi = params.loss_proxy.ranges["in_sisdr"]
    assert table["loss_proxy"][0] == pytest.approx(np.clip((table["in_sisdr"][0] - lo) / (hi - lo), 0, 1), abs=1e-6)


def test_the_score_stage_reads_the_probe_output_under_data_root_by_default(corpus, tmp_path: Path, capsys):
    """``probe_path: null``: both stages derive ``<data.root>/scores/probe_loss.parquet``, so a moved data.root
    moves them together (a fixed path in params.yaml pointed at the default root's file)."""
    from curator.contract.scores import read_settings
    from curator.scoring.cli import main as score_main

    manifest, _ = corpus
    root = tmp_path / "big" / "data"
    assert main(["--config", PARAMS, f"data.manifest={manifest}", f"data.root={root}", "--metrics",
                 str(tmp_path / "p.json"), "probe.steps=5", "probe.batch_size=2", "probe.crop_sec=0.5",
                 "probe.hidden=8", "probe.layers=1"]) == 0
    derived = root / "scores" / "probe_loss.parquet"
    assert derived.is_file()
    light = ["score.scorers=[bandwidth, sisdr]", "score.ref_quality.weights={ref_bandwidth_ratio: 1}",
             "score.loss_proxy.weights={in_sisdr: 1, probe_holdout_loss: 1}", "score.loss_proxy.probe_path=null",
             "score.num_workers=1", f"score.work_dir={tmp_path / 'w'}"]
    out = tmp_path / "scores.parquet"
    assert score_main(["--config", PARAMS, f"data.manifest={manifest}", f"data.root={root}", "--out", str(out),
                       "--metrics", str(tmp_path / "s.json"), *light]) == 0
    settings = read_settings(out)
    assert settings["loss_proxy"]["probe_path"] == str(derived) and settings["probe_sha256"] == sha256_file(derived)
    assert read_json(tmp_path / "s.json")["probe_missing_rows"] == 0
    other = tmp_path / "other"  # another data.root without a probe run: named, with what to run
    assert score_main(["--config", PARAMS, f"data.manifest={manifest}", f"data.root={other}", "--out", str(out),
                       "--metrics", str(tmp_path / "s.json"), *light]) == 1
    assert f"'{other / 'scores' / 'probe_loss.parquet'}' does not exist: run the probe stage" in capsys.readouterr().err

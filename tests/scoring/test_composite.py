"""Composite columns (loss_proxy, ref_quality): fixed anchors, weighted mean, NaN components drop out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from curator.config import ConfigError, parse
from curator.scoring.composite import combine, unit_scale
from curator.scoring.params import LossProxyParams, RefQualityParams

RANGES = {"in_sisdr": [30.0, -10.0], "in_estoi": [1.0, 0.0]}


def test_unit_scale_maps_first_anchor_to_zero_second_to_one_and_clips():
    np.testing.assert_allclose(unit_scale(np.array([30.0, 10.0, -10.0, -40.0, 99.0]), 30.0, -10.0),
                               [0.0, 0.5, 1.0, 1.0, 0.0])
    assert np.isnan(unit_scale(np.array([np.nan]), 0.0, 1.0)[0])


def test_combine_is_a_weighted_mean_and_higher_is_harder():
    cols = {"in_sisdr": np.array([30.0, -10.0, 10.0]), "in_estoi": np.array([1.0, 0.0, 0.5])}
    out = combine(cols, {"in_sisdr": 1.0, "in_estoi": 3.0}, RANGES)
    np.testing.assert_allclose(out, [0.0, 1.0, 0.5])


def test_nan_components_are_left_out_and_all_nan_gives_nan():
    cols = {"in_sisdr": np.array([-10.0, np.nan]), "in_estoi": np.array([np.nan, np.nan])}
    out = combine(cols, {"in_sisdr": 1.0, "in_estoi": 1.0}, RANGES)
    assert out[0] == 1.0 and np.isnan(out[1])


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="in_pesq"):
        combine({"in_sisdr": np.zeros(1)}, {"in_pesq": 1.0}, {"in_pesq": [4.5, 1.0]})


def test_params_need_anchors_for_every_weighted_column():
    with pytest.raises(ConfigError, match="in_pesq"):
        parse(LossProxyParams, {"weights": {"in_pesq": 1.0}, "ranges": RANGES, "speech_free_hardness": 1.0},
              "score.loss_proxy")
    # a probe weight without a path reads the probe stage's default output under data.root
    derived = parse(LossProxyParams, {"weights": {"probe_holdout_loss": 1.0}, "ranges": {"probe_holdout_loss": [0, 1]},
                                      "speech_free_hardness": 1.0}, "x")
    assert derived.probe_path is None and derived.probe_columns == ["probe_holdout_loss"]
    assert derived.with_probe_path("/big/data").probe_path == "/big/data/scores/probe_loss.parquet"
    explicit = dataclasses.replace(derived, probe_path="elsewhere.parquet")
    assert explicit.with_probe_path("/big/data").probe_path == "elsewhere.parquet"
    with pytest.raises(ConfigError, match="positive weight"):
        parse(LossProxyParams, {"weights": {"in_sisdr": 0.0}, "ranges": RANGES, "speech_free_hardness": 1.0}, "x")
    with pytest.raises(ConfigError, match="speech_free_hardness"):
        parse(LossProxyParams, {"weights": {"in_sisdr": 1.0}, "ranges": RANGES, "speech_free_hardness": 2.0}, "x")


def test_ref_quality_anchors_run_bad_to_good():
    p = parse(RefQualityParams, {"weights": {"ref_dnsmos_ovrl": 1.0, "ref_clip_ratio": 1.0},
                                 "ranges": {"ref_dnsmos_ovrl": [1.5, 3.5], "ref_clip_ratio": [0.01, 0.0]}}, "x")
    cols = {"ref_dnsmos_ovrl": np.array([3.5, 1.5]), "ref_clip_ratio": np.array([0.0, 0.02])}
    np.testing.assert_allclose(combine(cols, p.weights, p.ranges), [1.0, 0.0])
    with pytest.raises(ConfigError, match=r"score.ref_quality.ranges.ref_clip_ratio"):
        parse(RefQualityParams, {"weights": {"ref_clip_ratio": 1.0}, "ranges": {"ref_clip_ratio": [0.0, 0.0]}}, "x")

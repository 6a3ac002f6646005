"""Metric registry sanity (enhanced == clean scores high), tails, and the per-split summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from curator.evaluation.metrics import CATEGORIES, METRICS, compute_metrics, register_metric
from curator.evaluation.report import summarise_split, tail_mean


def speechlike(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140.0
    tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 10))
    return (0.3 * tone * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2).astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000, 48000])
def test_clean_scores_high_and_noise_lowers_every_metric(sr: int) -> None:
    clean = speechlike(sr, 2.0)
    noisy = clean + np.random.default_rng(1).normal(0, 0.05, clean.size).astype(np.float32)
    metrics = [METRICS.get(m) for m in ("pesq", "estoi", "si_sdr")]
    srs = np.array([sr, sr])
    out = compute_metrics(metrics, [clean, noisy], [clean, clean], srs, pool=None)
    assert out["pesq"][0] > 4.0 and out["estoi"][0] > 0.99 and out["si_sdr"][0] > 40
    for name in out:
        assert out[name][1] < out[name][0], name


def test_missing_reference_gives_nan_for_intrusive_metrics() -> None:
    x = speechlike(16000, 1.0)
    out = compute_metrics([METRICS.get("si_sdr")], [x, x], [None, x], np.array([16000, 16000]), pool=None)
    assert math.isnan(out["si_sdr"][0]) and out["si_sdr"][1] > 40


def test_registry_tags_categories() -> None:
    assert {METRICS.get(m).category for m in ("pesq", "estoi", "si_sdr")} == {"intrusive"}
    with pytest.raises(ValueError, match="category"):
        register_metric("bogus", "made_up")
    assert "non_intrusive" in CATEGORIES


def test_tail_mean_takes_the_worst_fraction() -> None:
    values = np.r_[np.arange(1.0, 21.0), np.nan]
    assert tail_mean(values, 0.1, higher_is_better=True) == 1.5
    assert tail_mean(values, 0.1, higher_is_better=False) == 19.5
    assert tail_mean(np.array([5.0]), 0.1, True) == 5.0
    assert math.isnan(tail_mean(np.array([np.nan]), 0.1, True))


def test_summary_of_a_hand_made_split() -> None:
    df = pd.DataFrame({
        "utt_id": ["a", "b", "c", "d"], "sr": [8000, 8000, 16000, 16000], "language": ["en"] * 4,
        "distortion": ["noise", "noise", "reverb", "reverb"], "has_reference": [True, True, True, False],
        "si_sdr": [10.0, 20.0, np.nan, np.nan], "noisy_si_sdr": [0.0, 5.0, 4.0, np.nan],
        "output_to_input_db": [0.0, 0.0, 0.0, -12.0],
    })
    out = summarise_split(df, [METRICS.get("si_sdr")], tail_fraction=0.5, slices=["distortion", "sr"])
    assert out["enhanced"]["si_sdr"] == 15.0 and out["noisy"]["si_sdr"] == 3.0
    assert out["improvement"]["si_sdr"] == 12.0
    assert out["tail"]["enhanced"]["si_sdr"] == 10.0 and out["tail"]["noisy"]["si_sdr"] == 2.0  # ceil(0.5 * 3) = 2 worst: 0, 4
    assert out["n_with_reference"] == 3 and out["n_failed"]["si_sdr"] == 1  # row c had a reference, no score
    assert out["slices"]["distortion"]["noise"] == {"n": 2, "si_sdr": 15.0, "noisy_si_sdr": 2.5}
    assert out["slices"]["sr"]["16000"]["si_sdr"] is None
    assert out["urgent_rank"] == {"enhanced": 1.0, "noisy": 2.0}
    assert out["speech_free"] == {"n": 1, "output_to_input_db": -12.0}

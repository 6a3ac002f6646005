"""Paired statistics: identical systems give no evidence, a clear winner wins, failed rows drop from both."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curator.evaluation.paired import paired_stats, verdict, worst_mean


def test_identical_systems_give_no_evidence():
    x = np.random.default_rng(0).normal(2.0, 0.5, 200)
    s = paired_stats(x, x.copy(), True, n_boot=500, seed=1)
    assert s.diff == 0 and s.ci_low == 0 and s.ci_high == 0 and s.verdict == "no evidence"
    assert s.win_rate == 0.5 and s.tail_diff == 0


def test_clear_winner_and_direction():
    rng = np.random.default_rng(1)
    b = rng.normal(1.5, 0.4, 100)
    a = b + 0.3 + rng.normal(0, 0.05, 100)
    up = paired_stats(a, b, True, n_boot=1000, seed=2)
    assert up.verdict == "better" and up.ci_low > 0 and up.win_rate > 0.95
    assert paired_stats(b, a, True, n_boot=1000, seed=2).verdict == "worse"
    assert paired_stats(a, b, False, n_boot=1000, seed=2).verdict == "worse"  # lower is better (e.g. LSD)


def test_pairing_beats_unpaired_noise():
    """A small consistent gain under large between-utterance spread: paired CI excludes 0."""
    rng = np.random.default_rng(3)
    base = rng.normal(0, 5.0, 60)
    s = paired_stats(base + 0.2, base, True, n_boot=1000, seed=0)
    assert s.verdict == "better" and s.ci_high - s.ci_low < 1e-9 + 0.01


def test_failed_rows_drop_from_both_and_are_counted():
    a = np.array([1.0, np.nan, 3.0, 4.0])
    b = np.array([0.0, 1.0, np.inf, 2.0])
    s = paired_stats(a, b, True, n_boot=100, seed=0)
    assert s.n == 2 and s.n_dropped == 2
    assert s.mean_a == pytest.approx(2.5) and s.mean_b == pytest.approx(1.0)


def test_bootstrap_is_seeded_and_bounded():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=300), rng.normal(size=300)
    one, two = paired_stats(a, b, True, 700, 9), paired_stats(a, b, True, 700, 9)
    assert one == two
    assert one.ci_low <= one.diff <= one.ci_high


def test_worst_mean_and_verdict_edges():
    v = np.arange(10.0)
    assert worst_mean(v, 0.1, True) == 0.0 and worst_mean(v, 0.2, False) == 8.5
    assert verdict(math.nan, 1.0, True) == "no evidence"
    assert paired_stats(np.array([np.nan]), np.array([1.0]), True, 10, 0).verdict == "no evidence"

"""Paired statistics: identical systems give no evidence, a clear winner wins, failed rows drop from both."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curator.evaluation.paired import (
    TOO_FEW,
    bootstrap_p,
    family_verdicts,
    mark_family,
    paired_stats,
    verdict,
    worst_mean,
)


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


def test_bootstrap_p_agrees_with_the_interval():
    """p < 1 - confidence exactly when the percentile interval excludes 0 (away from the interpolation edge)."""
    rng = np.random.default_rng(5)
    checked = 0
    for shift in np.linspace(-0.3, 0.3, 25):
        b = rng.normal(2.0, 0.5, 40)
        s = paired_stats(b + shift + rng.normal(0, 0.3, 40), b, True, n_boot=2000, seed=1)
        if abs(s.p_value - 0.05) > 0.005:
            assert (s.p_value < 0.05) == (s.verdict != "no evidence"), (shift, s)
            checked += 1
    assert checked >= 20
    assert bootstrap_p(np.full(2000, 0.1)) == pytest.approx(2 / 2001)  # never 0: below 2 / (B + 1) is all B shows
    assert bootstrap_p(np.array([0.1, 0.2, 0.3])) == 0.5 and bootstrap_p(np.array([-1.0, 1.0])) == 1.0
    assert math.isnan(paired_stats(np.array([1.0]), np.array([0.0]), True, 100, 0).p_value)


def test_family_verdicts_control_the_false_discoveries():
    n = np.array([30, 30, 30, 30, 4])
    diff = np.array([0.2, 0.1, -0.1, 0.0, 0.5])
    p = np.array([0.001, 0.03, 0.04, 0.5, 0.0])
    q, v = family_verdicts(n, diff, p, True, 0.95, 10, "bh")
    # Benjamini-Hochberg over the 4 tested: 0.001 * 4 = 0.004; 0.03 and 0.04 both become 0.04 * 4 / 3
    assert q[:4] == pytest.approx([0.004, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5]) and math.isnan(q[4])
    assert v == ["better", "no evidence", "no evidence", "no evidence", TOO_FEW]
    q, v = family_verdicts(n, diff, p, True, 0.95, 10, "none")
    assert v == ["better", "better", "worse", "no evidence", TOO_FEW]
    assert family_verdicts(n, diff, p, False, 0.95, 10, "none")[1][:3] == ["worse", "worse", "better"]  # lower wins
    # a mean difference of exactly 0 favours neither system, whatever its p-value says
    assert family_verdicts(np.array([30]), np.array([0.0]), np.array([0.001]), True, 0.95, 10, "none")[1] == \
        ["no evidence"]
    with pytest.raises(ValueError, match="correction"):
        family_verdicts(n, diff, p, True, 0.95, 10, "holm")


def test_slicing_a_null_comparison_finely_marks_nothing_after_the_correction():
    """40 slices of 30 utterances with no real difference: taken one by one, chance marks some; as a family
    (Benjamini-Hochberg) none is marked. A real gain in one more slice is still found."""
    rng = np.random.default_rng(11)
    blocks = []
    for i in range(41):
        b = rng.normal(2.0, 0.5, 30)
        a = b + rng.normal(0.0, 0.2, 30) + (0.4 if i == 40 else 0.0)
        s = paired_stats(a, b, True, n_boot=2000, seed=i)
        blocks.append({"n": s.n, "improvement": s.diff, "p_value": s.p_value})
    alone = [dict(b) for b in blocks]
    mark_family(alone, True, 0.95, 10, "none")
    family = [dict(b) for b in blocks]
    mark_family(family, True, 0.95, 10, "bh")
    assert sum(b["verdict"] != "no evidence" for b in alone[:40]) >= 1  # the chance marks the correction removes
    assert [b["verdict"] for b in family[:40]] == ["no evidence"] * 40
    assert family[40]["verdict"] == "better" and family[40]["q_value"] < 0.05

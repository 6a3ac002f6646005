"""The URGENT ranking scheme on a hand-computed example."""

from __future__ import annotations

import pandas as pd
import pytest

from curator.evaluation.ranking import rank_systems, urgent_rank

CATEGORIES = {"dnsmos": "non_intrusive", "pesq": "intrusive", "estoi": "intrusive", "lsd": "intrusive"}
HIGHER = {"dnsmos": True, "pesq": True, "estoi": True, "lsd": False}


def test_hand_computed_example() -> None:
    means = pd.DataFrame({"dnsmos": [3.0, 3.0, 2.5], "pesq": [2.0, 2.5, 1.5], "estoi": [0.8, 0.7, 0.8],
                          "lsd": [2.0, 3.0, 1.0]}, index=["A", "B", "C"])
    out = urgent_rank(means, CATEGORIES, HIGHER)
    # dense ranks: dnsmos A1 B1 C2 | pesq B1 A2 C3 | estoi A1 C1 B2 | lsd (lower better) C1 A2 B3
    assert out.loc["A", "rank/dnsmos"] == 1 and out.loc["B", "rank/dnsmos"] == 1 and out.loc["C", "rank/dnsmos"] == 2
    assert out.loc["C", "rank/lsd"] == 1 and out.loc["B", "rank/lsd"] == 3
    assert out.loc["A", "category/intrusive"] == pytest.approx(5 / 3)
    assert out.loc["B", "category/intrusive"] == pytest.approx(2.0)
    assert out["overall"].to_dict() == pytest.approx({"A": 4 / 3, "B": 1.5, "C": 11 / 6})
    assert list(out.index) == ["A", "B", "C"]


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="mystery"):
        urgent_rank(pd.DataFrame({"mystery": [1.0]}, index=["A"]), CATEGORIES, HIGHER)


def test_registry_supplies_categories_and_directions() -> None:
    means = pd.DataFrame({"pesq": [3.0, 2.0], "si_sdr": [5.0, 10.0]}, index=["x", "y"])
    out = rank_systems(means)
    assert out["overall"].to_dict() == {"x": 1.5, "y": 1.5}  # one win each within the intrusive category


def test_official_rank_with_ties_rerank_and_a_missing_category() -> None:
    from curator.evaluation.ranking import OFFICIAL_2026, official_rank

    means = pd.DataFrame({
        "dnsmos_ovrl": [2.0, 3.0, 3.0, 2.5], "nisqa": [2.0, 3.5, 4.0, 3.5],
        "pesq": [1.5, 2.5, 2.5, 3.0], "estoi": [0.6, 0.8, 0.7, 0.8],
        "spk_sim": [0.9, 0.8, 0.7, 0.9], "si_sdr": [0.0, 30.0, 30.0, 1.0],  # extra: reported, not ranked
    }, index=["noisy", "A", "B", "C"])
    result = official_rank(means)
    t = result.table
    # dense ranks with ties: dnsmos A1 B1 C2 noisy3 | nisqa B1 A2 C2 noisy3 | pesq C1 A2 B2 noisy3 | estoi A1 C1 B2 noisy3
    assert t.loc["A", "rank/dnsmos_ovrl"] == 1 and t.loc["B", "rank/dnsmos_ovrl"] == 1
    assert t.loc["C", "rank/nisqa"] == 2 and t.loc["noisy", "rank/pesq"] == 3
    assert "rank/si_sdr" not in t.columns
    assert t["category/non_intrusive"].to_dict() == pytest.approx({"noisy": 3.0, "A": 1.5, "B": 1.0, "C": 2.0})
    assert t["category/intrusive"].to_dict() == pytest.approx({"noisy": 3.0, "A": 1.5, "B": 2.0, "C": 1.0})
    assert t["category/task_dependent"].to_dict() == pytest.approx({"noisy": 1.0, "A": 2.0, "B": 3.0, "C": 1.0})
    # averages (the worked example) and the pseudocode's re-ranked result
    assert t["overall"].to_dict() == pytest.approx({"noisy": 7 / 3, "A": 5 / 3, "B": 2.0, "C": 4 / 3})
    assert t["category_rank/intrusive"].to_dict() == {"noisy": 4, "A": 2, "B": 3, "C": 1}
    assert t["overall_rank"].to_dict() == {"C": 1, "A": 2, "B": 3, "noisy": 4}  # mean category ranks 5/3, 2, 7/3, 3
    assert list(t.index) == ["C", "A", "B", "noisy"]
    assert result.missing == {"non_intrusive": ("utmos", "scoreq"), "task_independent": OFFICIAL_2026["task_independent"],
                              "task_dependent": ("emo_sim", "lid_acc", "cacc")}
    assert not result.complete


def test_official_rank_needs_an_official_metric() -> None:
    from curator.evaluation.ranking import official_rank

    with pytest.raises(ValueError, match="official"):
        official_rank(pd.DataFrame({"si_sdr": [1.0, 2.0]}, index=["a", "b"]))


def test_overall_rank_ranks_the_category_ranks_not_their_averages() -> None:
    # category A: a1 ranks S1 1, S2 2, S3 3 and a2 ranks 1, 1, 2 -> averages 1, 1.5, 2.5 -> category ranks 1, 2, 3;
    # category B: b1 ranks 3, 2, 1. Mean category rank: 2, 2, 2 (one overall rank for all three), while the mean of
    # the averages (2, 1.75, 1.75) would put S2 and S3 ahead of S1
    means = pd.DataFrame({"a1": [3.0, 2.0, 1.0], "a2": [3.0, 3.0, 1.0], "b1": [1.0, 2.0, 3.0]},
                         index=["S1", "S2", "S3"])
    out = urgent_rank(means, {"a1": "A", "a2": "A", "b1": "B"}, {"a1": True, "a2": True, "b1": True})
    assert out["overall"].to_dict() == pytest.approx({"S1": 2.0, "S2": 1.75, "S3": 1.75})
    assert out["overall_rank"].to_dict() == {"S1": 1, "S2": 1, "S3": 1}


def test_an_official_metric_without_a_finite_mean_is_missing_not_ranked() -> None:
    from curator.evaluation.ranking import official_rank

    means = pd.DataFrame({"pesq": [2.0, 3.0], "estoi": [float("nan")] * 2}, index=["a", "b"])
    result = official_rank(means)
    assert "estoi" in result.missing["intrusive"] and "rank/estoi" not in result.table.columns

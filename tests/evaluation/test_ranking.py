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

"""The curated list and its sidecar depend only on the params that define the selection.

Training stages depend on the folder that holds the list and its sidecar, so a param the selection does not read
must leave both byte-identical: a ``select.alpha`` sweep must not retrain the ``random`` cells. Each strategy
declares the strategy-only params it reads (``BaseSelector.reads``); these tests check every declaration against
the selection itself (a knob it reads changes the sidecar's record; one it does not read changes nothing), and
that execution and report knobs change nothing either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curator.selection.cli import main
from curator.selection.params import STRATEGY_ONLY, recorded_config
from curator.selection.registry import SELECTORS
from curator.selection.synthetic import SyntheticSpec

from .conftest import stage_folder

STRATEGY_KNOBS = {"alpha": ("select.alpha=0.37",), "coverage": ("select.coverage.clusters=3",),
                  "mos_threshold": ("select.mos_threshold.min_score=0.5",)}
"""One change of each pair-level strategy-only param, large enough to move the strategies that read it."""
NEUTRAL_KNOBS = {
    "search": ("select.diversity.search=ivf", "select.diversity.chunk_size=37", "select.diversity.nlist=4",
               "select.diversity.train_iters=3", "select.diversity.window_memory_mb=0.001"),
    "stats_sample": ("select.diversity.stats_sample=7",),
}
"""Execution knobs (how the exact diversity search runs) and a report knob: no strategy's list may move."""


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stage_folder(tmp_path_factory.mktemp("recorded_config"),
                        SyntheticSpec(n=600, dim=16, seed=5, rows_per_source=30), K_hours=0.3,
                        coverage={"clusters": 16, "min_cluster_size": 4})


def select(stage: Path, out: str, *overrides: str) -> Path:
    dest = stage / out
    argv = ["--config", str(stage / "params.yaml"), "--scores", str(stage / "scores.parquet"),
            "--quotas", str(stage / "params.yaml"), "--truth", str(stage / "truth.csv"),
            "--out", str(dest / "curated.csv"), "--metrics", str(stage / f"{out}.select.json"),
            "--plots-dir", str(stage / f"{out}.plots"), *overrides]
    assert main(argv) == 0
    return dest


def list_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_declarations_name_strategy_only_params() -> None:
    for name in SELECTORS.names():
        assert set(SELECTORS.get(name).reads) <= set(STRATEGY_ONLY), name


@pytest.mark.parametrize("strategy", ["cvar", "coverage_only", "mos_threshold", "random"])
def test_the_list_folder_moves_only_with_what_the_strategy_reads(stage: Path, strategy: str) -> None:
    assert set(SELECTORS.names()) == {"cvar", "coverage_only", "mos_threshold", "random"}, "add the new strategy"
    reads = SELECTORS.get(strategy).reads
    base = select(stage, f"{strategy}_base", f"select.name={strategy}")
    expected = list_bytes(base)
    assert set(expected) == {"curated.csv", "curated_meta.json"}  # the report is elsewhere
    for knob, overrides in {**STRATEGY_KNOBS, **NEUTRAL_KNOBS}.items():
        moved = list_bytes(select(stage, f"{strategy}_{knob}", f"select.name={strategy}", *overrides))
        if knob in reads:
            meta = json.loads(moved["curated_meta.json"])
            assert knob in meta["config"]["select"] and moved["curated_meta.json"] != expected["curated_meta.json"]
        else:
            assert moved == expected, (strategy, knob)
    # the report still says everything: the tail at alpha is a figure of every strategy's selection
    alpha = json.loads((stage / f"{strategy}_alpha.select.json").read_text())["tail"]["alpha"]
    assert alpha == pytest.approx(0.37)


def test_cvar_list_moves_with_alpha(stage: Path) -> None:
    """The knob a strategy reads does change its selection (so the declaration is not vacuous)."""
    a = select(stage, "cvar_a10", "select.name=cvar")
    b = select(stage, "cvar_a37", "select.name=cvar", "select.alpha=0.37")
    assert (a / "curated.csv").read_bytes() != (b / "curated.csv").read_bytes()


def test_recorded_config_drops_only_what_it_should() -> None:
    from curator.selection.params import SelectParams

    params = SelectParams(name="random", K_hours=1.0)
    random_config = recorded_config(params)
    assert not {"alpha", "coverage", "mos_threshold", "threads"} & set(random_config)
    assert set(random_config["diversity"]) == {"min_cosine", "center"}
    assert {"K_hours", "seed", "slice_key", "quotas", "penalties", "quality_gate"} <= set(random_config)
    cvar_config = recorded_config(params, ("alpha", "coverage"))
    assert cvar_config["alpha"] == 0.10 and "clusters" in cvar_config["coverage"]


def test_source_selection_records_what_its_strategy_reads() -> None:
    from curator.selection.sources.params import SourceSelectParams, strategy_reads

    assert strategy_reads("list") == ("list",)
    assert set(strategy_reads("cvar")) == {"alpha", "coverage", "hardness"}
    random_config = recorded_config(SourceSelectParams(name="random", K_hours=1.0), strategy_reads("random"))
    assert not {"alpha", "coverage", "mos_threshold", "list", "threads"} & set(random_config)
    assert {"hardness", "caps", "bandwidth_edges_hz", "noise", "quality_gate"} <= set(random_config)

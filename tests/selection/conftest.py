"""Selection fixtures: synthetic scores tables (no scoring run needed) and a one-call selection helper."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from curator.config import parse
from curator.contract.scores import write_table
from curator.selection.base import Selection
from curator.selection.params import CoverageParams, DiversityParams, SelectParams
from curator.selection.registry import build
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

BASE: dict[str, Any] = {
    **dataclasses.asdict(SelectParams(name="cvar", K_hours=1.0)),
    "diversity": {**dataclasses.asdict(DiversityParams()), "search": "exact", "chunk_size": 64},
    "coverage": {**dataclasses.asdict(CoverageParams()), "clusters": 8, "min_cluster_size": 4},
}
"""Every select key (so any dotted override applies), with small chunks and clusters for small tables."""


def stage_folder(root: Path, spec: SyntheticSpec, **select: Any) -> Path:
    """``root`` holding a synthetic ``scores.parquet``, its ``truth.csv`` and the tests' params with ``select``
    keys updated (a budget that fits the table, small clusters), for runs of the select stage's CLI."""
    table, truth = synthetic_scores(spec)
    write_table(table, root / "scores.parquet")
    truth.to_csv(root / "truth.csv", index=False)
    params = yaml.safe_load(TEST_PARAMS.read_text())
    for key, value in select.items():
        params["select"][key] = {**params["select"][key], **value} if isinstance(value, dict) else value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def make_params(**overrides: Any) -> SelectParams:
    """``SelectParams`` from BASE with dotted overrides, e.g. ``make_params(**{"diversity.min_cosine": 0})``."""
    cfg = copy.deepcopy(BASE)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        assert leaf in node, f"unknown select key {dotted}"
        node[leaf] = value
    return parse(SelectParams, cfg, "select")


def run_selection(table: pa.Table, params: SelectParams, filters=None, quotas=None) -> Selection:  # noqa: ANN001
    selector = build(params.name, params=params, filters=filters, quotas=quotas)
    return selector.run(selector.load(table))


def table_hours(table: pa.Table) -> float:
    return float(pa.compute.sum(table["duration_sec"]).as_py()) / 3600.0


@pytest.fixture(scope="session")
def small_table() -> pa.Table:
    """600 rows, 16-d embeddings with near-duplicates; about 1.5 h."""
    return synthetic_scores(SyntheticSpec(n=600, dim=16, seed=1, rows_per_source=60, duplicate_fraction=0.1))[0]

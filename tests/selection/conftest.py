"""Selection fixtures: synthetic scores tables (no scoring run needed) and a one-call selection helper."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pyarrow as pa
import pytest

from curator.config import parse
from curator.selection.base import Selection
from curator.selection.params import CoverageParams, DiversityParams, SelectParams
from curator.selection.registry import build
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

BASE: dict[str, Any] = {
    **dataclasses.asdict(SelectParams(name="cvar", K_hours=1.0)),
    "diversity": {**dataclasses.asdict(DiversityParams()), "search": "exact", "chunk_size": 64},
    "coverage": {**dataclasses.asdict(CoverageParams()), "clusters": 8, "min_cluster_size": 4},
}
"""Every select key (so any dotted override applies), with small chunks and clusters for small tables."""


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

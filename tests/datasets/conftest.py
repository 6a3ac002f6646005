"""Fixtures for the datasets tests: the repository's params and a tiny profile (helpers: ds_helpers.py)."""

from __future__ import annotations

import pytest
from ds_helpers import PARAMS, TINY

from curator.config import load_params, parse
from curator.datasets.params import DatasetParams, SimulationParams


@pytest.fixture
def sim() -> SimulationParams:
    return parse(SimulationParams, load_params(PARAMS)["simulation"], "simulation")


@pytest.fixture
def dataset_params() -> DatasetParams:
    return parse(DatasetParams, load_params(PARAMS, TINY)["dataset"], "dataset")

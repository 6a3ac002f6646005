"""A tiny paired corpus in tmp_path (see train_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import build_corpus, tiny_params


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, Path]:
    paths = build_corpus(tmp_path / "corpus")
    paths["params"] = tiny_params(tmp_path, paths)
    return paths

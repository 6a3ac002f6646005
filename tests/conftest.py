"""Shared fixtures: tiny audio and manifests built in tmp_path (no test needs a real corpus)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))

# Property tests draw the same examples on every run (a green CI stays green for the same code); a failure
# they once found at random is pinned as an explicit test. HYPOTHESIS_PROFILE=explore draws fresh ones.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def write_wav(tmp_path: Path):
    """Write a float signal to ``tmp_path/name`` and return the path."""

    def _write(name: str, x: np.ndarray, sr: int) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.asarray(x, dtype=np.float32), sr)
        return path

    return _write

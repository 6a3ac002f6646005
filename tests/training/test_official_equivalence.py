"""The two weight-for-weight checks against the official networks, run as their users run them
(``benchmarks/check_bsrnn_espnet.py``: ESPnet's ``BSRNNSeparator``; ``benchmarks/check_flowse_official.py``: the
checkout's ``FlowSEModel``), at a small size. Skipped when the official checkout or its interpreter is absent
(``CURATOR_OFFICIAL_CHECKOUT``, ``CURATOR_OFFICIAL_PYTHON``, as ``test_official_backend.py``; third_party/README.md
builds both). Without them, ``test_official_recipe.py`` and ``test_flowse.py`` still check the figures these
scripts printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_official_backend import CHECKOUT, PYTHON, REPO, _official_present

SMALL = ["--channels", "8", "--layers", "1", "--seconds", "0.25"]


@pytest.fixture(scope="module")
def site() -> str:
    why = _official_present()
    if why:
        pytest.skip(why)
    out = subprocess.run([PYTHON, "-c", "import site; print(':'.join(site.getsitepackages()))"], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def _run(script: str, site: str, *extra: str) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--espnet-site", site, *SMALL, *extra],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.stdout, proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def test_bsrnn_equals_espnets_bsrnn_separator(site: str) -> None:
    code, report = _run("check_bsrnn_espnet.py", site)
    assert code == 0 and len(report["rates"]) == 7 and report["max_abs_diff"] < 1e-6
    code, _ = _run("check_bsrnn_espnet.py", site, "--tolerance", "0")  # the exit status follows the tolerance
    assert code == 1


def test_flowse_equals_the_official_flowse(site: str) -> None:
    code, report = _run("check_flowse_official.py", site, "--checkout", str(CHECKOUT), "--steps", "2")
    assert code == 0 and len(report["rates"]) == 7 and report["max_rel_diff"] < 1e-5
    assert report["ema_max_abs_diff"] < 1e-5
    # the official network holds its Fourier frequencies of t as a frozen parameter, ours as a buffer
    assert report["official_params"] - report["params"] == 8 // 2
    code, _ = _run("check_flowse_official.py", site, "--checkout", str(CHECKOUT), "--steps", "2", "--tolerance", "0")
    assert code == 1

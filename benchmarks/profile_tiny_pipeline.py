"""Where the end-to-end tests' time goes: each stage of the tiny profile (``tests/e2e/tiny_params.yaml``), timed.

Builds the same repository copy as ``tests/e2e/test_pipeline.py`` (tracked files, the tests' params with the tiny
overrides, a fresh git repository), then runs ``dvc repro`` and prints JSON: wall seconds per stage, each stage
module's Python import time (``python -X importtime``), and the total. Run from the repository root, with the
environment of ``make test``::

    python benchmarks/profile_tiny_pipeline.py [--keep DIR]

Session 26, idle 2-core host: 21 stages in 135 s; eval (17 metrics, their models loaded) 24 s, score 12 s,
source_score 10 s, each training cell 7-9 s (2 steps: mostly process start, torch and Lightning), each selection
cell about 5 s. The time is spread over per-stage start-up, not one hot spot.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests"))

from test_pipeline import _env, make_copy  # noqa: E402  (the tests' own copy, so the figures are theirs)

MODULE = re.compile(r"python -m (curator[\w.]*)")


def timed_repro(root: Path) -> dict[str, float]:
    """Run ``dvc repro`` in ``root`` and time each stage from its "Running stage" line to the next (DVC's own
    hashing and bookkeeping between stages included); stages DVC skips take no time."""
    proc = subprocess.Popen(["dvc", "repro"], cwd=root, env=_env(root), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    marks: list[tuple[str, float]] = []
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail[-40:], line]
        if line.startswith("Running stage '"):
            marks.append((line.split("'")[1], time.perf_counter()))
    end = time.perf_counter()
    if proc.wait() != 0:
        raise SystemExit(f"dvc repro failed in {root}:\n{''.join(tail)}")
    ends = [t for _, t in marks[1:]] + [end]
    return {name: round(stop - t0, 2) for (name, t0), stop in zip(marks, ends, strict=True)}


def import_seconds(root: Path, module: str) -> float:
    """Seconds Python spends importing ``module`` (its own ``-X importtime`` total, cumulative microseconds)."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=root, env=_env(root),
                         capture_output=True, text=True, check=True)
    last = [line for line in res.stderr.splitlines() if line.startswith("import time:")][-1]
    return int(last.split("|")[1]) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", default=None, help="build the copy here and keep it (default: a temporary folder)")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tiny_pipeline_"))
    root.mkdir(parents=True, exist_ok=True)
    make_copy(root)
    start = time.perf_counter()
    timings = timed_repro(root)
    total = time.perf_counter() - start
    modules = sorted({m for m in MODULE.findall((root / "dvc.yaml").read_text())})
    report = {"what": "dvc repro, seconds per stage of the tiny e2e profile (tests/e2e/tiny_params.yaml)",
              "python": sys.version.split()[0], "stages": len(timings), "total_sec": round(total, 1),
              "stage_sec": dict(sorted(timings.items(), key=lambda kv: -kv[1])),
              "import_sec": {m: round(import_seconds(root, m), 2) for m in modules}}
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

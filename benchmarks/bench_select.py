"""Selection speed, memory and near-duplicate recall at scale; prints one JSON document.

For each size, a synthetic scores table (the scoring schema: 2-16 s utterances, 256-d embeddings with
source clusters and planted near-duplicates, 7 distortions x 5 languages x 7 sampling rates) is written
once to --workdir; then the real CLI (`python -m curator.selection`) runs in a child process with the
repository's `select` params, K = 28% of the pool's hours and the repository's quotas, and the child's wall
time, CPU time and peak RSS are recorded (Parquet read, hashing, CSV, metrics and plots included).

Recall: the near-duplicate pairs (cosine > 1 - min_cosine) of a --recall-sample row sample of the largest
table found by the index a selection run builds (cells trained on the whole pool), against exact search;
at the configured min_cosine and at any --recall-min-cosine values.

Targets (issue 3): 1M rows in <= 60 s wall and <= 3 GB peak on 2 cores; recall >= 0.99.
usage: python benchmarks/bench_select.py [--rows 10000 100000 1000000] [--workdir /tmp/bench_select]
                                        [--recall-min-cosine 0.15 0.3 0.45]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from curator.config import load_params, load_section
from curator.selection.diversity import pair_recall
from curator.selection.pool import load_pool
from curator.selection.synthetic import SyntheticSpec, write_synthetic

REPO = Path(__file__).resolve().parents[1]
BUDGET_SHARE = 0.28
TARGET_WALL_S = 60.0
TARGET_RSS_GB = 3.0
TARGET_RECALL = 0.99
KIB_PER_GB = 1024 * 1024


def table_path(workdir: Path, rows: int, dim: int, seed: int) -> Path:
    """Write the synthetic table once per (rows, dim, seed); reuse it afterwards."""
    path = workdir / f"scores_{rows}_{dim}_{seed}.parquet"
    if not path.exists():
        truth = write_synthetic(path.with_suffix(".tmp"), SyntheticSpec(n=rows, dim=dim, seed=seed))
        path.with_suffix(".tmp").rename(path)
        truth.to_csv(path.with_suffix(".truth.csv"), index=False)
    return path


def run_cli(scores: Path, workdir: Path, params: dict) -> dict:
    """One selection run in a child process: wall, CPU and peak RSS of that child only."""
    run_dir = workdir / scores.stem
    run_dir.mkdir(exist_ok=True)
    config = run_dir / "params.yaml"
    config.write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, "-m", "curator.selection", "--config", str(config), "--scores", str(scores),
           "--quotas", str(config), "--truth", str(scores.with_suffix(".truth.csv")),
           "--out", str(run_dir / "curated.csv"), "--metrics", str(run_dir / "select.json"),
           "--plots-dir", str(run_dir / "plots")]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"selection failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    metrics = json.loads((run_dir / "select.json").read_text())
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_gb": round(usage.ru_maxrss / KIB_PER_GB, 3),
        "n_selected": metrics["n_selected"],
        "hours_selected": round(metrics["hours_selected"], 2),
        "budget_hours": round(metrics["budget_hours"], 2),
        "blocked_rows": metrics["diversity"]["blocked_rows"],
        "queried_rows": metrics["diversity"]["queried_rows"],
        "tail_coverage": metrics["tail"]["tail_coverage"],
        "max_abs_quota_deviation_hours": metrics["quota"]["max_abs_deviation_hours"],
    }


def measure_recall(scores: Path, params: dict, sample: int, seed: int, min_cosines: list[float]) -> list[dict]:
    """Recall of near-duplicate pairs on a row sample, with the cells a selection on the whole pool uses.

    One entry per ``min_cosine``: looser thresholds admit pairs that are merely similar (same source),
    which straddle cells more often than near-copies do.
    """
    cfg = {"select": params["select"], "data": params["data"]}
    select = load_section("select", cfg=cfg)
    pool = load_pool(scores, select.slice_key, center=select.diversity.center)
    rows = np.arange(pool.n)
    picked = np.sort(np.random.default_rng(seed).choice(pool.n, size=min(sample, pool.n), replace=False))
    return [{"min_cosine": mc, **pair_recall(pool.emb, rows, picked,
                                             dataclasses.replace(select.diversity, min_cosine=mc), seed)}
            for mc in min_cosines]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategy", default="cvar")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_select"))
    ap.add_argument("--recall-sample", type=int, default=50_000, help="rows of the recall sample (0 = skip)")
    ap.add_argument("--recall-min-cosine", type=float, nargs="*", default=[],
                    help="extra min_cosine values to measure recall at (the configured one is always measured)")
    ap.add_argument("--config", default=str(REPO / "params.yaml"), help="params with the select section")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)

    base = load_params(args.config)
    runs = []
    for rows in args.rows:
        scores = table_path(args.workdir, rows, args.dim, args.seed)
        hours = float(pc.sum(pq.read_table(scores, columns=["duration_sec"])["duration_sec"]).as_py()) / 3600
        params = {"data": {**base["data"], "filters": {"languages": [], "sample_rates": [], "distortions": [],
                                                       "max_hours": None}},
                  "select": {**base["select"], "name": args.strategy, "K_hours": BUDGET_SHARE * hours}}
        load_before = os.getloadavg()[0]
        result = run_cli(scores, args.workdir, params)
        runs.append({"rows": rows, "pool_hours": round(hours, 1), "loadavg_1min_before": round(load_before, 2),
                     **result})
        print(json.dumps(runs[-1]), file=sys.stderr)
    report: dict = {"benchmark": "select", "strategy": args.strategy, "dim": args.dim, "cpus": os.cpu_count(),
                    "budget_share": BUDGET_SHARE, "runs": runs}
    largest = runs[-1]
    report["targets"] = {"rows": largest["rows"], "wall_ok": largest["wall_s"] <= TARGET_WALL_S,
                         "rss_ok": largest["peak_rss_gb"] <= TARGET_RSS_GB}
    if args.recall_sample:
        scores = table_path(args.workdir, largest["rows"], args.dim, args.seed)
        configured = float(params["select"]["diversity"]["min_cosine"])
        recall = measure_recall(scores, params, args.recall_sample, args.seed,
                                sorted({configured, *args.recall_min_cosine}))
        report["recall"] = recall
        report["targets"]["recall_ok"] = next(r for r in recall if r["min_cosine"] == configured)["recall"] >= TARGET_RECALL
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Source selection at scale: time and peak memory of ``select_sources`` on synthetic source tables; prints JSON.

A synthetic source manifest and source scores table (``selection/sources/synthetic.py``: 2-16 s speech sources,
about 2,500 h per million, 20 sources a speaker on average with Zipf-like speaker and corpus sizes, 8 corpora,
5 languages, 7 rates and their effective-bandwidth bands, --dim-d embeddings clustered by speaker with 2%
near-copies, 2 simulated pairs per used source for the hardness) is written once to --workdir as Parquet.
Then, per configuration, a child process reads the tables (timed apart) and runs the selection the
``source_select`` stage runs (timed: hardness join, pool, gate, caps, quotas, ranking, greedy, trim, metrics),
and reports its wall time, CPU time and the child's peak RSS (tables included).

Configurations: the default strategy (cvar) with every cap on (``max_hours_per_speaker``, ``max_share_per_corpus``,
``max_share_per_language``), language and band quotas, the quality gate, K = 700 h of each 2,500 h; once without
and once with the near-duplicate rule (``diversity.min_cosine`` 0 and 0.05: ``nodiv``, ``div``); ``div_ivf`` and
``div_exact`` force the search mode that ``div`` (``search: auto``) chooses between, for a same-window comparison
(``selection_sha256`` shows that every mode selects the same sources). --timeout bounds each child.

usage: python benchmarks/bench_source_select.py [--sources 1000000] [--dim 256] [--workdir /tmp/bench_source_select]
                                               [--configs nodiv div div_ivf div_exact] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
BUDGET_HOURS_PER_MILLION = 700.0
"""The organisers' 700 h of a 2,500 h pool, scaled with the number of sources."""
KIB_PER_GB = 1024 * 1024
CONFIGS: dict[str, dict[str, Any]] = {
    "nodiv": {"diversity.min_cosine": 0.0},
    "div": {"diversity.min_cosine": 0.05},
    "div_ivf": {"diversity.min_cosine": 0.05, "diversity.search": "ivf"},
    "div_exact": {"diversity.min_cosine": 0.05, "diversity.search": "exact"},
}


def params(sources: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """The repository's source_select section with the benchmark's caps, quotas and budget."""
    cfg = yaml.safe_load((REPO / "params.yaml").read_text())["source_select"]
    cfg.update(name="cvar", K_hours=BUDGET_HOURS_PER_MILLION * sources / 1e6, slice_key=["language", "band"],
               quotas={"language": {"en": 0.4, "zh": 0.15}, "band": {"20k+": 0.3}})
    cfg["caps"].update(max_hours_per_speaker=1.0, max_share_per_corpus=0.3, max_share_per_language=0.45)
    cfg["quality_gate"].update(column="ref_quality", min_score=0.7)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


def write_tables(workdir: Path, sources: int, dim: int) -> dict[str, Path]:
    from curator.selection.sources.synthetic import SourceSpec, pair_scores, synthetic_sources

    paths = {k: workdir / f"{k}_{sources}_{dim}.parquet" for k in ("manifest", "scores", "pairs")}
    if all(p.exists() for p in paths.values()):
        return paths
    start = time.perf_counter()
    manifest, scores = synthetic_sources(SourceSpec(n_speech=sources, dim=dim, corpora=8, duration_sec=(2.0, 16.0),
                                                    n_noise=1000, n_wind=100, n_rir=1000))
    pq.write_table(pa.Table.from_pandas(manifest.drop(columns=["custom"]), preserve_index=False), paths["manifest"])
    pq.write_table(scores, paths["scores"])
    pq.write_table(pair_scores(manifest), paths["pairs"])
    print(f"tables written in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return paths


def child(args: argparse.Namespace) -> None:
    """One measured selection (run in a fresh process so its peak RSS is its own)."""
    from curator.config import parse
    from curator.selection.sources.params import SourceSelectParams
    from curator.selection.sources.select import select_sources

    paths = json.loads(args.child)
    cfg = parse(SourceSelectParams, json.loads(args.params), "source_select")
    start = time.perf_counter()
    manifest = pq.read_table(paths["manifest"]).to_pandas()
    manifest["custom"] = [{}] * len(manifest)
    scores = pq.read_table(paths["scores"])
    pairs = pq.read_table(paths["pairs"])
    read_s = time.perf_counter() - start
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_GB
    start, cpu = time.perf_counter(), time.process_time()
    result = select_sources(cfg, manifest, scores, pairs)
    m = result.metrics
    print(json.dumps({
        "read_seconds": round(read_s, 2), "select_seconds": round(time.perf_counter() - start, 2),
        "select_cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_GB, 3),
        "rss_after_read_gb": round(rss_loaded, 3),
        "budget_hours": m["budget_hours"], "hours_selected": round(m["hours_selected"], 3),
        "n_selected": m["n_selected"], "within_budget": m["within_budget"],
        "selection_sha256": hashlib.sha256(result.frame.to_csv(index=False).encode()).hexdigest(),
        "caps_hold": all(m["caps"][k]["holds"] for k in ("max_hours_per_speaker", "max_share_per_corpus",
                                                       "max_share_per_language")),
        "caps": {k: m["caps"][k] for k in ("pre_limited_rows", "trimmed_rows", "trimmed_hours")},
        "max_share_per_corpus_observed": round(m["caps"]["max_share_per_corpus"]["max_observed"], 4),
        "gated_rows": m["gate"]["gated_rows"], "eligible_rows": m["gate"]["eligible_rows"],
        "quota_max_abs_deviation_hours": m["selection"]["quota"]["max_abs_deviation_hours"],
        "diversity": {k: m["selection"]["diversity"].get(k) for k in (
            "min_cosine", "blocked_rows", "queried_rows", "violations_repaired", "check", "check_pair_products")},
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--workdir", default="/tmp/bench_source_select")
    ap.add_argument("--configs", nargs="+", default=["nodiv", "div"], choices=list(CONFIGS))
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per measured child")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--params", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in args.sources:
        paths = write_tables(workdir, n, args.dim)
        for name in args.configs:
            cfg = params(n, CONFIGS[name])
            load = os.getloadavg()[0]
            cmd = [sys.executable, __file__, "--child", json.dumps({k: str(v) for k, v in paths.items()}),
                   "--params", json.dumps(cfg)]
            entry: dict[str, Any] = {"sources": n, "config": name, "diversity_min_cosine": cfg["diversity"]["min_cosine"],
                                     "load_1min_before": round(load, 2)}
            start = time.perf_counter()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO,
                                      env={**os.environ, "PYTHONPATH": str(REPO / "src")})
                entry["wall_seconds"] = round(time.perf_counter() - start, 2)
                if proc.returncode != 0:
                    entry["error"] = proc.stderr[-2000:]
                else:
                    entry.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                entry["error"] = f"timed out after {args.timeout:g} s"
            runs.append(entry)
            print(json.dumps(entry), file=sys.stderr)
    print(json.dumps({"benchmark": "source_select", "dim": args.dim, "cpu_count": os.cpu_count(),
                      "python": platform.python_version(), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()

"""``python -m curator.scoring.probe``: cross-fitted probe-model loss per utterance -> ``probe_loss.parquet``.

Mix it into ``loss_proxy`` by setting ``score.loss_proxy.probe_path`` to the output and giving
``score.loss_proxy.weights.probe_loss`` a positive weight.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.filters import apply_filters
from curator.contract.manifest import ManifestError, read_manifest
from curator.contract.scores import CARRIED, FLOAT_DECIMALS, write_table
from curator.io import sha256_file, timings_path, write_json
from curator.scoring.cli import MANIFEST_OVERRIDE, native, split_overrides
from curator.scoring.decode import DecodeRules
from curator.scoring.probe.fit import cross_fit
from curator.scoring.runner import PROBE_COLUMN


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m curator.scoring.probe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
    ap.add_argument("--out", default="data/scores/probe_loss.parquet", help="probe-loss Parquet to write")
    ap.add_argument("--metrics", default="metrics/probe.json", help="stage metrics JSON (default: %(default)s)")
    ap.add_argument("--timings", default=None, help="wall-clock figures, kept out of the metrics DVC compares "
                    "(default: timings/<name> beside --metrics, e.g. metrics/timings/probe.json)")
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help=f"{MANIFEST_OVERRIDE}=PATH (default: <data.root>/manifests/<data.dataset>/train.jsonl) and dotted overrides such as "
                         f"probe.steps=100")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    manifest, overrides = split_overrides(args.overrides)
    try:
        cfg = load_params(args.config, overrides)
        data = load_section("data", cfg=cfg)
        score = load_section("score", cfg=cfg, plugins=False)  # plain decode keys only, no scorer checks
        params = load_section("probe", cfg=cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = manifest or str(data.manifest_path("train"))
    try:
        df = read_manifest(manifest)
    except (ManifestError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kept, _ = apply_filters(df, data.filters, seed=score.seed)
    rows = [{k: native(r.get(k)) for k in CARRIED} for r in kept.to_dict("records")]
    if not rows:
        print("error: nothing to probe: the manifest has no rows after data.filters", file=sys.stderr)
        return 1
    rules = DecodeRules(score.min_duration_sec, score.silence_dbfs, score.max_length_mismatch_sec)
    t0 = time.perf_counter()
    try:
        losses, folds, statuses, reports = cross_fit(rows, params, rules)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = pa.table({
        "utt_id": pa.array([r["utt_id"] for r in rows], type=pa.string()),
        PROBE_COLUMN: pa.array(np.round(losses, FLOAT_DECIMALS), type=pa.float64()),
        "probe_fold": pa.array(folds, type=pa.int64()),
        "status": pa.array(statuses, type=pa.string()),
    })
    settings = {"probe": dataclasses.asdict(params), "decode": dataclasses.asdict(rules),
                "manifest_sha256": sha256_file(manifest), "filters": dataclasses.asdict(data.filters)}
    write_table(table, args.out, settings)
    wall = time.perf_counter() - t0
    write_json(args.metrics, {
        "rows": len(rows), "status_counts": dict(sorted(Counter(statuses).items())),
        "mean_probe_loss": round(float(np.nanmean(losses)), 6) if np.isfinite(losses).any() else None,
        "folds": [dataclasses.asdict(r) for r in reports],
    })
    write_json(args.timings or timings_path(args.metrics), {"wall_seconds": round(wall, 3)})
    print(f"probe loss for {len(rows)} utterances in {wall:.1f}s -> {args.out}")
    return 0

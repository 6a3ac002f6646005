"""``python -m curator.scoring.probe``: cross-fitted probe-model losses per utterance -> ``probe_loss.parquet``.

Columns: ``probe_holdout_loss`` (a probe that never saw the row: a difficulty measure, RHO-LOSS's irreducible
loss) and, with ``probe.ranking: reducible_loss``, ``probe_current_loss`` and RHO-LOSS's
``probe_reducible_loss`` = current-model loss minus held-out loss (see :func:`curator.scoring.probe.fit.cross_fit`).
Mix one into ``loss_proxy`` by giving ``score.loss_proxy.weights.<column>`` a positive weight; the score stage
reads ``score.loss_proxy.probe_path``, by default (null) this stage's default output under ``data.root``.
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
from curator.contract.filters import FilterError, apply_filters
from curator.contract.manifest import ManifestError, read_manifest
from curator.contract.scores import (
    CARRIED,
    FLOAT_DECIMALS,
    PROBE_CURRENT_COLUMN,
    PROBE_HOLDOUT_COLUMN,
    PROBE_REDUCIBLE_COLUMN,
    write_table,
)
from curator.io import sha256_file, timings_path, write_json
from curator.scoring.cli import MANIFEST_OVERRIDE, native, split_overrides
from curator.scoring.decode import OK, DecodeRules
from curator.scoring.params import default_probe_path
from curator.scoring.probe.fit import cross_fit
from curator.scoring.runner import task_row


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m curator.scoring.probe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
    ap.add_argument("--out", default=None,
                    help="probe-loss Parquet to write (default: <data.root>/scores/probe_loss.parquet)")
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
    args.out = args.out or str(default_probe_path(data.root))
    try:
        df = read_manifest(manifest)
        kept, _ = apply_filters(df, data.filters, seed=score.seed, where=f"manifest '{manifest}'")
    except (ManifestError, FilterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # task_row: the carried fields plus how the manifest says to decode the file (resampled, channel policy)
    rows = [task_row({k: native(r.get(k)) for k in (*CARRIED, "custom") if k in r}) for r in kept.to_dict("records")]
    if not rows:
        print("error: nothing to probe: the manifest has no rows after data.filters", file=sys.stderr)
        return 1
    rules = DecodeRules(score.min_duration_sec, score.silence_dbfs, score.max_length_mismatch_sec)
    t0 = time.perf_counter()
    try:
        result = cross_fit(rows, params, rules)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    columns = {PROBE_HOLDOUT_COLUMN: result.holdout}
    if result.current is not None:
        columns |= {PROBE_CURRENT_COLUMN: result.current, PROBE_REDUCIBLE_COLUMN: result.reducible}
    table = pa.table({
        "utt_id": pa.array([r["utt_id"] for r in rows], type=pa.string()),
        **{c: pa.array(np.round(v, FLOAT_DECIMALS), type=pa.float64()) for c, v in columns.items()},
        "probe_fold": pa.array(result.folds, type=pa.int64()),
        "status": pa.array(result.statuses, type=pa.string()),
    })
    settings = {"probe": dataclasses.asdict(params), "decode": dataclasses.asdict(rules),
                "manifest_sha256": sha256_file(manifest), "filters": dataclasses.asdict(data.filters)}
    write_table(table, args.out, settings)
    wall = time.perf_counter() - t0
    decoded = np.array([s == OK for s in result.statuses])
    unscored = decoded & ~np.isfinite(result.holdout)
    skipped = {r.fold: r.skipped for r in result.reports if r.skipped}
    write_json(args.metrics, {
        "rows": len(rows), "status_counts": dict(sorted(Counter(result.statuses).items())),
        "ranking": params.ranking,
        **{f"mean_{c}": _mean(v) for c, v in columns.items()},
        "unscored_rows": int(unscored.sum()),
        "folds": [dataclasses.asdict(r) for r in result.reports],
    })
    write_json(args.timings or timings_path(args.metrics), {"wall_seconds": round(wall, 3)})
    for fold, why in skipped.items():
        print(f"warning: probe fold {fold}: {why}; its {sum(result.folds == fold)} row(s) keep a NaN "
              f"{PROBE_HOLDOUT_COLUMN} (left out of loss_proxy), counted as unscored_rows in {args.metrics}",
              file=sys.stderr)
    print(f"probe {params.ranking} for {len(rows)} utterances in {wall:.1f}s -> {args.out}")
    return 0


def _mean(values: np.ndarray) -> float | None:
    return round(float(np.nanmean(values)), 6) if np.isfinite(values).any() else None

"""``python -m curator.scoring``: score a manifest -> ``data/scores/train_scores.parquet`` + ``metrics/score.json``."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.filters import FilterError, apply_filters
from curator.contract.manifest import ManifestError, read_manifest
from curator.contract.scores import CARRIED, write_table
from curator.io import sha256_file, timings_path, write_json
from curator.scoring.base import ScoringError
from curator.scoring.decode import OK
from curator.scoring.runner import ScoreResult, score_rows

MANIFEST_OVERRIDE = "data.manifest"
DEFAULT_METRICS = "metrics/score.json"
MAX_EXAMPLES = 20
"""Rows named in metrics/score.json's example lists (all are counted)."""

EPILOG = """examples:
  python -m curator.scoring --config params.yaml data.manifest=data/manifests/mini/train.jsonl \\
      --out data/scores/train_scores.parquet
  python -m curator.scoring data.manifest=my.jsonl --out s.parquet score.executor=ray score.device=cuda

Rows that cannot be scored (unreadable, nan, silent, too_short, ...) stay in the table with status != ok and
NaN scores; metrics/score.json counts them. A killed run resumes from its finished shards (<out>.shards/).
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m curator.scoring", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
    ap.add_argument("--out", default=None,
                    help="scores Parquet to write (default: <data.root>/scores/train_scores.parquet)")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help="stage metrics JSON (default: %(default)s)")
    ap.add_argument("--timings", default=None, help="wall-clock figures, kept out of the metrics DVC compares "
                    "(default: timings/<name> beside --metrics, e.g. metrics/timings/score.json)")
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="data.manifest=PATH (default: <data.root>/manifests/<data.dataset>/train.jsonl) and dotted params overrides, "
                         "e.g. score.batch_size=8")
    return ap


def split_overrides(overrides: Sequence[str]) -> tuple[str | None, list[str]]:
    """Take ``data.manifest=PATH`` out of the dotted overrides (it names an input, not a parameter)."""
    manifest = None
    rest = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == MANIFEST_OVERRIDE:
            manifest = value
        else:
            rest.append(item)
    return manifest, rest


def native(value: Any) -> Any:
    """pandas NaN/None -> None, numpy scalars -> Python (rows are fingerprinted as JSON)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def metrics(result: ScoreResult, n_manifest: int, dropped: dict[str, int]) -> dict[str, Any]:
    """The stage's metrics/score.json: counts by status and rejects (what the data is, not how fast it went)."""
    statuses: Counter[str] = Counter()
    for s in result.summaries:
        statuses.update(s.statuses)
    audio = sum(s.audio_seconds for s in result.summaries)
    n = sum(s.utterances for s in result.summaries)
    return {
        "rows_in_manifest": n_manifest,
        "rows_filtered_out": dropped,
        "rows_scored": n,
        "status_counts": dict(sorted(statuses.items())),
        "rejects": n - statuses.get(OK, 0),
        "speech_free_ok": sum(s.speech_free for s in result.summaries),
        "duration_corrected": sum(s.duration_corrected for s in result.summaries),
        # manifest hours minus decoded hours of those rows (positive: the manifest claimed audio that is not there)
        "duration_corrected_hours": round(sum(s.duration_corrected_seconds for s in result.summaries) / 3600.0, 6),
        "duration_corrected_examples": [u for s in result.summaries for u in s.duration_corrected_ids][:MAX_EXAMPLES],
        "audio_hours_ok": round(audio / 3600.0, 6),
        "shards_total": len(result.summaries),
        # rows the probe file has no value for (loss_proxy leaves the probe term out there); None: probe unused
        "probe_missing_rows": None if result.probe_rows is None else n - result.probe_rows,
    }


def timings(result: ScoreResult) -> dict[str, Any]:
    """metrics/timings/score.json: throughput and per-scorer model time (differ on every run, so DVC does not
    compare them as metrics)."""
    scorer_seconds: Counter[str] = Counter()
    for s in result.summaries:
        scorer_seconds.update(s.scorer_seconds)
    audio = sum(s.audio_seconds for s in result.summaries)
    n = sum(s.utterances for s in result.summaries)
    wall = max(result.wall_seconds, 1e-9)
    return {
        "wall_seconds": round(result.wall_seconds, 3),
        "utterances_per_second": round(n / wall, 3),
        "times_realtime": round(audio / wall, 3),
        "times_realtime_per_worker": round(audio / wall / max(result.workers, 1), 3),
        "workers": result.workers,
        "shards_resumed": sum(s.resumed for s in result.summaries),
        "scorer_seconds": {k: round(v, 3) for k, v in sorted(scorer_seconds.items())},
        "decode_seconds": round(sum(s.decode_seconds for s in result.summaries), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    manifest, overrides = split_overrides(args.overrides)
    try:
        cfg = load_params(args.config, overrides)
        data = load_section("data", cfg=cfg)
        params = load_section("score", cfg=cfg)
        if params.loss_proxy.probe_columns:  # null: the probe stage's output under data.root
            params = dataclasses.replace(params, loss_proxy=params.loss_proxy.with_probe_path(data.root))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = manifest or str(data.manifest_path("train"))
    args.out = args.out or str(Path(data.root) / "scores" / "train_scores.parquet")
    if not Path(manifest).is_file():
        print(f"error: manifest '{manifest}' does not exist (run the manifest stage, or pass "
              f"{MANIFEST_OVERRIDE}=PATH)", file=sys.stderr)
        return 2
    try:
        df = read_manifest(manifest)
        kept, dropped = apply_filters(df, data.filters, seed=params.seed, where=f"manifest '{manifest}'")
    except (ManifestError, FilterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = [{k: native(r.get(k)) for k in (*CARRIED, "custom") if k in r} for r in kept.to_dict("records")]
    work_dir = params.work_dir or f"{args.out}.shards"
    extra = {"manifest_sha256": sha256_file(manifest), "filters": dataclasses.asdict(data.filters)}
    try:
        result = score_rows(rows, params, work_dir, extra_settings=extra)
    except ScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_table(result.table, args.out, result.settings)
    report = metrics(result, len(df), dropped)
    write_json(args.metrics, report)
    speed = timings(result)
    write_json(args.timings or timings_path(args.metrics), speed)
    print(f"scored {report['rows_scored']} utterances ({report['rejects']} rejected: "
          f"{report['status_counts']}) at {speed['times_realtime']}x realtime -> {args.out}")
    return 0

"""``python -m curator.scoring.sources``: score a source manifest -> ``<root>/scores/source_scores.parquet`` +
``metrics/source_score.json``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section, parse
from curator.contract.scores import STATUS_OK
from curator.contract.source_scores import (
    NOISE_HAS_SPEECH_COLUMN,
    NOISE_SPEECH_RATIO_COLUMN,
    write_source_scores,
)
from curator.contract.sources import KINDS, SourceManifestError, read_sources
from curator.io import sha256_file, timings_path, write_json
from curator.scoring.base import SCORERS, ScoringError
from curator.scoring.params import RefQualityParams
from curator.scoring.sources.params import SourceScoreParams
from curator.scoring.sources.runner import SourceScoreResult, score_sources
from curator.scoring.sources.scorers import BASE_SCORER

DEFAULT_METRICS = "metrics/source_score.json"
MAX_EXAMPLES = 20
"""Sources named in the metrics' example lists (all are counted)."""

EPILOG = """examples:
  python -m curator.scoring.sources --config params.yaml --sources data/manifests/mini/sources.jsonl \\
      --out data/scores/source_scores.parquet --metrics metrics/source_score.json
  python -m curator.scoring.sources --sources s.jsonl --out s.parquet source_score.device=cuda

Speech sources take the pair scorer's options (score.options.<scorer>) and ref_quality anchors
(score.ref_quality), so their columns mean what they mean in the pairs' scores. Sources that cannot be scored
(unreadable, nan, sr_mismatch, too_short, silent) stay in the table with status != ok and NaN scores; the
metrics count them. A killed run resumes from its finished shards (<out>.shards/).
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m curator.scoring.sources", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
    ap.add_argument("--sources", default=None,
                    help="source manifest (default: <data.root>/manifests/<data.dataset>/sources.jsonl)")
    ap.add_argument("--out", default=None, help="source scores Parquet (default: <data.root>/scores/source_scores.parquet)")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help="stage metrics JSON (default: %(default)s)")
    ap.add_argument("--timings", default=None, help="wall-clock figures, kept out of the metrics DVC compares "
                    "(default: timings/<name> beside --metrics)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="dotted params overrides, e.g. source_score.num_workers=4")
    return ap


def load_config(cfg: Mapping[str, Any]) -> tuple[SourceScoreParams, dict[str, Any], RefQualityParams]:
    """The ``source_score`` section, the parsed ``score.options`` of every scorer it runs, and ``score.ref_quality``.

    Only those entries of the ``score`` section are read (the pair scorer's list, workers and loss proxy are
    not this stage's business).
    """
    params: SourceScoreParams = load_section("source_score", cfg=cfg)
    score = cfg.get("score")
    if not isinstance(score, Mapping):
        raise ConfigError("missing section 'score': source scoring reads score.options and score.ref_quality")
    raw_options = score.get("options") or {}
    if not isinstance(raw_options, Mapping):
        raise ConfigError(f"'score.options' must be a mapping, got {raw_options!r}")
    options: dict[str, Any] = {}
    wanted = [*params.speech.scorers, *(n for n in [*params.noise.scorers, *params.rir.scorers] if n in BASE_SCORER)]
    for name in sorted(set(wanted)):  # a noise scorer takes the options of the pair scorer of the same name
        options[name] = parse(SCORERS.get(name).Options, raw_options.get(name) or {}, f"score.options.{name}")
    if "ref_quality" not in score:
        raise ConfigError("missing parameter 'score.ref_quality' (source scoring computes ref_quality with it)")
    ref_quality = parse(RefQualityParams, score["ref_quality"], "score.ref_quality")
    produced = {c for n in params.speech.scorers for c in SCORERS.get(n).outputs}
    for col, w in ref_quality.weights.items():
        if w > 0 and col not in produced:
            raise ConfigError(f"'score.ref_quality.weights.{col}' > 0 but no scorer in 'source_score.speech.scorers' "
                              f"writes '{col}'; add its scorer there or set the weight to 0")
    return params, options, ref_quality


def _count(values: Sequence[Any]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def metrics(result: SourceScoreResult, params: SourceScoreParams) -> dict[str, Any]:
    """metrics/source_score.json: rows by kind and status, invalid rows, noise clips with speech (no timings)."""
    t = result.table
    kind = np.asarray(t.column("kind").to_pylist(), dtype=object)
    status = np.asarray(t.column("status").to_pylist(), dtype=object)
    sid = t.column("source_id").to_pylist()
    dur = t.column("duration_sec").to_numpy(zero_copy_only=False)
    present = [k for k in KINDS if (kind == k).any()]
    bad = np.flatnonzero(status != STATUS_OK)
    report: dict[str, Any] = {
        "rows": len(t),
        "rows_by_kind": {k: int((kind == k).sum()) for k in present},
        "status_by_kind": {k: _count(status[kind == k].tolist()) for k in present},
        "hours_ok_by_kind": {k: round(float(np.nansum(dur[(kind == k) & (status == STATUS_OK)])) / 3600.0, 6)
                             for k in present},
        "invalid_rows": len(bad),
        "invalid_examples": [{"kind": kind[i], "source_id": sid[i], "status": status[i]} for i in bad[:MAX_EXAMPLES]],
        "duration_corrected": sum(s.duration_corrected for s in result.summaries),
        "shards_total": len(result.summaries),
    }
    if NOISE_HAS_SPEECH_COLUMN in t.column_names:
        flag = t.column(NOISE_HAS_SPEECH_COLUMN).to_pylist()
        ratio = t.column(NOISE_SPEECH_RATIO_COLUMN).to_numpy(zero_copy_only=False)
        hits = [i for i, f in enumerate(flag) if f]
        report["noise_max_speech_ratio"] = params.noise.max_speech_ratio
        report["noise_with_speech"] = {k: sum(kind[i] == k for i in hits) for k in ("noise", "wind_noise") if k in present}
        report["noise_with_speech_examples"] = [{"kind": kind[i], "source_id": sid[i],
                                                 "noise_speech_ratio": float(ratio[i])} for i in hits[:MAX_EXAMPLES]]
    return report


def timings(result: SourceScoreResult) -> dict[str, Any]:
    """Throughput and per-scorer model time by group (differ on every run: not a DVC metric)."""
    wall = max(result.wall_seconds, 1e-9)
    audio = sum(s.audio_seconds for s in result.summaries)
    workers = max((g.workers for g in result.groups), default=1)
    groups = {}
    for g in result.groups:
        seconds: Counter[str] = Counter()
        for s in g.summaries:
            seconds.update(s.scorer_seconds)
        groups[g.group] = {"audio_hours": round(sum(s.audio_seconds for s in g.summaries) / 3600.0, 6),
                           "workers": g.workers,
                           "scorer_seconds": {k: round(v, 3) for k, v in sorted(seconds.items())},
                           "decode_seconds": round(sum(s.decode_seconds for s in g.summaries), 3),
                           "shards_resumed": sum(s.resumed for s in g.summaries)}
    return {"wall_seconds": round(result.wall_seconds, 3), "times_realtime": round(audio / wall, 3),
            "times_realtime_per_worker": round(audio / wall / workers, 3), "workers": workers, "groups": groups}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    try:
        cfg = load_params(args.config, args.overrides)
        params, options, ref_quality = load_config(cfg)
        if args.sources is None or args.out is None:
            data = load_section("data", cfg=cfg)
            args.sources = args.sources or str(data.sources_manifest_path)
            args.out = args.out or str(data.source_scores_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not Path(args.sources).is_file():
        print(f"error: source manifest '{args.sources}' does not exist (run the sources stage: python -m "
              "curator.datasets --stage sources, or pass --sources PATH)", file=sys.stderr)
        return 2
    try:
        sources = read_sources(args.sources)
    except SourceManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if sources.empty:  # a dataset without source lists: empty outputs, so the pipeline runs at curation.level: pairs
        import pyarrow as pa

        from curator.contract.source_scores import LABELS

        empty = pa.table({name: pa.array([], type=typ) for name, typ in LABELS.items()})
        write_source_scores(empty, args.out, {"sources_sha256": sha256_file(args.sources)})
        note = (f"source manifest '{args.sources}' has no rows (the dataset lists no sources): nothing scored, "
                "source-level curation is unavailable")
        write_json(args.metrics, {"rows": 0, "rows_by_kind": {k: 0 for k in KINDS}, "unavailable": note})
        write_json(args.timings or timings_path(args.metrics), {"wall_sec": 0.0})
        print(f"note: {note}", file=sys.stderr)
        return 0
    work_dir = params.work_dir or f"{args.out}.shards"
    try:
        result = score_sources(sources, params, options, ref_quality, work_dir)
    except ScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_source_scores(result.table, args.out, {**result.settings, "sources_sha256": sha256_file(args.sources)})
    report = metrics(result, params)
    write_json(args.metrics, report)
    speed = timings(result)
    write_json(args.timings or timings_path(args.metrics), speed)
    flagged = sum(report.get("noise_with_speech", {}).values())
    print(f"scored {report['rows']} sources {report['rows_by_kind']} ({report['invalid_rows']} invalid, {flagged} noise "
          f"clips with speech) at {speed['times_realtime']}x realtime -> {args.out}")
    return 0


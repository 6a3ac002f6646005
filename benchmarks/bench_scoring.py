"""Scoring speed: times-realtime per CPU core of each scorer, and of the whole score stage, plus its overhead.

1. Decodes the manifest and resamples it to 16 kHz once, then times every configured scorer alone on
   length-bucketed batches in this process with one thread: its bare model time (``scorers.<name>``:
   seconds, times-realtime per core). Decoding and resampling count as stage overhead, not model time.
2. Runs the whole stage (decode, resample, shards, markers, assembly) with ``--workers`` processes and
   reports wall time, utterances/s, times-realtime, times-realtime per core and the overhead over the bare
   scorers, twice: from wall time (``wall * workers / sum(bare seconds) - 1``) and from CPU time (the
   stage's CPU seconds, worker processes included, over the bare scorers' CPU seconds, minus 1). The CPU
   figure is the one to trust on a shared machine; the target is <= 0.15.

With ``--device cuda`` the GPU-capable scorers (DNSMOS, embeddings, DistillMOS) run on the GPU. Prints one
JSON object on stdout (progress on stderr).

    python benchmarks/bench_scoring.py [--manifest data/manifests/mini/train.jsonl] [--limit N]
        [--workers 2] [--device cpu|cuda] [--config params.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from curator.config import load_params, load_section
from curator.contract.filters import apply_filters
from curator.contract.manifest import read_manifest
from curator.contract.scores import CARRIED
from curator.scoring.base import AudioPool
from curator.scoring.cli import native
from curator.scoring.decode import OK, decode_pair
from curator.scoring.runner import ScoringJob, score_rows

MODEL_SR = 16000  # the rate DNSMOS, VAD, wide-band PESQ and the embeddings run at


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the stage's worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bare_scorer_times(rows: list[dict], params, device: str
                      ) -> tuple[dict[str, float], dict[str, float], float]:
    """Wall and CPU seconds each scorer spends on the decoded pool (one thread, the stage's batches)."""
    job = ScoringJob(params, device, "")
    decoded = [decode_pair(r, job.rules()) for r in rows]
    ok = [d for d in decoded if d.status == OK]
    pool = AudioPool([f"u{i}" for i in range(len(ok))], np.array([d.sr for d in ok], dtype=np.int64),
                     [d.noisy for d in ok], [d.clean for d in ok], np.array([d.speech_free for d in ok]))
    audio = float(sum(len(d.noisy) / d.sr for d in ok))
    order = np.argsort([len(x) for x in pool.noisy], kind="stable")
    for which in ("noisy", "clean"):  # decoding and resampling are the stage's overhead, not model time
        pool.resampled(which, MODEL_SR, range(len(pool)))
    times, cpu = {}, {}
    for scorer in job.build_scorers():
        scorer.setup()
        size = scorer.batch_size or params.batch_size
        scorer.score_batch(pool.batch(order[:1]))  # warm-up (lazy inits, first-call compilation)
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(order), size):
            scorer.score_batch(pool.batch(order[start:start + size]))
        times[scorer.name] = time.perf_counter() - t0
        cpu[scorer.name] = time.process_time() - c0
        print(f"bare {scorer.name}: {times[scorer.name]:.1f}s", file=sys.stderr)
    return times, cpu, audio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="params.yaml")
    ap.add_argument("--manifest", default="data/manifests/mini/train.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N utterances (by utt_id)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("overrides", nargs="*", help="dotted params overrides, e.g. score.options.dnsmos.max_windows=2")
    args = ap.parse_args()
    if not Path(args.manifest).is_file():
        print(f"error: manifest '{args.manifest}' not found: run `dvc repro manifest` first", file=sys.stderr)
        return 2
    overrides = [*args.overrides, f"score.device={args.device}", f"score.num_workers={args.workers}",
                 "score.threads_per_worker=1"]
    cfg = load_params(args.config, overrides)
    data, params = load_section("data", cfg=cfg), load_section("score", cfg=cfg)
    kept, _ = apply_filters(read_manifest(args.manifest), data.filters, seed=params.seed)
    rows = [{k: native(r.get(k)) for k in CARRIED} for r in kept.to_dict("records")][: args.limit]

    bare, bare_cpu, audio = bare_scorer_times(rows, params, args.device)
    with tempfile.TemporaryDirectory() as work:
        t0, c0 = time.perf_counter(), cpu_seconds()
        result = score_rows(rows, params, Path(work) / "shards")
        wall, stage_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    bare_total = sum(bare.values())
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": args.device,
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "manifest": args.manifest,
        "utterances": len(rows),
        "audio_seconds": round(audio, 2),
        "bare_scorers_conditions": "one process, one thread, the stage's length-bucketed batches",
        "scorers": {name: {"seconds": round(sec, 3), "cpu_seconds": round(bare_cpu[name], 3),
                           "times_realtime_per_core": round(audio / sec, 1),
                           "times_realtime_per_cpu_second": round(audio / bare_cpu[name], 1)}
                    for name, sec in bare.items()},
        "scorers_total": {"seconds": round(bare_total, 3), "cpu_seconds": round(sum(bare_cpu.values()), 3),
                          "times_realtime_per_core": round(audio / bare_total, 2),
                          "times_realtime_per_cpu_second": round(audio / sum(bare_cpu.values()), 2)},
        "stage": {
            "workers": result.workers,
            "threads_per_worker": params.threads_per_worker,
            "wall_seconds": round(wall, 3),
            "utterances_per_second": round(len(rows) / wall, 2),
            "times_realtime": round(audio / wall, 2),
            "times_realtime_per_core": round(audio / wall / result.workers, 2),
            "cpu_seconds": round(stage_cpu, 3),
            "times_realtime_per_cpu_second": round(audio / stage_cpu, 2),
            "overhead_vs_bare_scorers_wall": round(wall * result.workers / bare_total - 1.0, 4),
            "overhead_vs_bare_scorers_cpu": round(stage_cpu / sum(bare_cpu.values()) - 1.0, 4),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

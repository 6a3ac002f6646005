"""Source scoring speed: times-realtime per CPU core of the default source scorers, per scorer, and where DNSMOS's
time goes.

1. Decodes the speech (and noise) sources once, resamples them to 16 kHz once, then times every configured
   scorer of each group alone on the stage's length-bucketed batches in this process with one thread: its bare
   model time (``groups.<group>.scorers.<name>``: seconds, CPU seconds, times-realtime per core).
2. Runs the whole stage (``score_sources``: decode, resample, shards, markers, assembly) with ``--workers``
   processes: wall time, times-realtime, per core, and per CPU second (the figure to trust on a shared
   machine: the 1-minute load average is printed beside it).
3. DNSMOS analysis: it scores whole 9.01 s windows (a shorter source is repeated to fill one), so its cost is
   per window, not per second of audio: windows scored, seconds per window, the model's multiply-accumulates
   per window (from the ONNX graph's shapes) and the GFLOP/s the CPU reached, and the times-realtime per core
   it implies for sources of a given mean duration.

The issue's goals: >= 12x realtime per CPU core for the default source scorers, >= 1000x on one GPU.
Prints one JSON object on stdout (progress on stderr).

    python benchmarks/bench_source_scoring.py --sources data/manifests/mini/sources.jsonl [--limit N]
        [--workers 2] [--device cpu|cuda] [--config params.yaml] [key=value ...]
    python benchmarks/bench_source_scoring.py --scp-dir data/external/mini/sources/train   # no manifest yet
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
from typing import Any

import numpy as np
import pandas as pd

from curator.config import load_params
from curator.contract.sources import Source, read_sources, write_sources
from curator.scoring.base import AudioPool
from curator.scoring.decode import OK
from curator.scoring.sources.cli import load_config
from curator.scoring.sources.runner import (
    GROUPS,
    SourceScoringJob,
    decode_source,
    group_run,
    score_sources,
    task_rows,
)

MODEL_SR = 16000
SCP = {"speech.scp": "speech", "noise.scp": "noise", "wind_noise.scp": "wind_noise", "rirs.scp": "rir"}


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def manifest_from_scp(folder: Path, out: Path) -> Path:
    """A source manifest from official-format ``<kind>.scp`` lists (``uid fs path``, paths relative to the
    dataset root two levels above ``folder``, as the mini build writes them)."""
    import soundfile as sf

    root = folder.parents[1]
    rows = []
    for name, kind in SCP.items():
        if not (folder / name).is_file():
            continue
        for line in (folder / name).read_text().splitlines():
            uid, fs, rel = line.split()
            info = sf.info(str(root / rel))
            rows.append(Source(uid, kind, str(root / rel), int(fs), info.frames / info.samplerate, corpus=folder.name))
    write_sources(out, rows)
    return out


def bare_times(group: str, sources: pd.DataFrame, params: Any, options: dict[str, Any], device: str
               ) -> tuple[dict[str, Any], int]:
    """Seconds each scorer of ``group`` spends on its decoded sources (one thread, the stage's batches)."""
    job = SourceScoringJob(group_run(params, group), device, "", group, options)  # type: ignore[arg-type]
    rows = task_rows(sources)
    decoded = [decode_source(r, job.rules()) for r in rows]
    ok = [d for d in decoded if d.status == OK]
    pool = AudioPool([r["utt_id"] for r, d in zip(rows, decoded, strict=True) if d.status == OK],
                     np.array([d.sr for d in ok], dtype=np.int64), [d.noisy for d in ok], [d.clean for d in ok],
                     np.zeros(len(ok), dtype=bool))
    audio = float(sum(len(d.clean) / d.sr for d in ok))
    order = np.argsort([len(x) for x in pool.clean], kind="stable")
    pool.resampled("clean", MODEL_SR, range(len(pool)))  # decoding and resampling are stage overhead
    out: dict[str, Any] = {}
    windows = 0
    for scorer in job.build_scorers():
        scorer.setup()
        size = scorer.batch_size or params.batch_size
        scorer.score_batch(pool.batch(order[:1]))  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, len(order), size):
            scorer.score_batch(pool.batch(order[start:start + size]))
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[scorer.name] = {"seconds": round(sec, 3), "cpu_seconds": round(cpu, 3),
                            "times_realtime_per_core": round(audio / sec, 1),
                            "times_realtime_per_cpu_second": round(audio / max(cpu, 1e-9), 1)}
        if scorer.name == "dnsmos":
            from curator.scoring.scorers.dnsmos import windows as dnsmos_windows

            windows = sum(len(dnsmos_windows(x, scorer.options.max_windows)) for x in pool.resampled("clean", MODEL_SR, range(len(pool))))
        print(f"bare {group}/{scorer.name}: {sec:.1f}s", file=sys.stderr)
    total = sum(v["seconds"] for v in out.values())
    total_cpu = sum(v["cpu_seconds"] for v in out.values())
    return {"sources_ok": len(ok), "audio_seconds": round(audio, 2),
            "mean_duration_sec": round(audio / max(len(ok), 1), 3), "scorers": out,
            "scorers_total": {"seconds": round(total, 3), "cpu_seconds": round(total_cpu, 3),
                              "times_realtime_per_core": round(audio / max(total, 1e-9), 2),
                              "times_realtime_per_cpu_second": round(audio / max(total_cpu, 1e-9), 2)}}, windows


def dnsmos_macs(options: Any) -> int:
    """Multiply-accumulates of one 9.01 s DNSMOS window (Conv and MatMul nodes, from shape inference)."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(options.resolved_model()))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w, out = inits[node.input[1]], shapes.get(node.output[0])
            if out:
                macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "MatMul" and node.input[1] in inits:
            w = inits[node.input[1]]
            macs += int(np.prod(w))
    return macs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="params.yaml")
    ap.add_argument("--sources", default="data/manifests/mini/sources.jsonl")
    ap.add_argument("--scp-dir", default=None, help="build the manifest from <kind>.scp lists in this folder instead")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N sources of each kind")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--skip-stage", action="store_true", help="time the bare scorers only")
    ap.add_argument("overrides", nargs="*", help="dotted params overrides, e.g. score.options.dnsmos.max_windows=2")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # as the stage's workers run (score.threads_per_worker: 1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = manifest_from_scp(Path(args.scp_dir), Path(tmp) / "sources.jsonl") if args.scp_dir else Path(args.sources)
        if not manifest.is_file():
            print(f"error: source manifest '{manifest}' not found: run the sources stage or pass --scp-dir", file=sys.stderr)
            return 2
        overrides = [*args.overrides, f"source_score.device={args.device}", f"source_score.num_workers={args.workers}",
                     "source_score.threads_per_worker=1"]
        params, options, ref_quality = load_config(load_params(args.config, overrides))
        sources = read_sources(manifest)
        if args.limit:
            sources = sources.groupby("kind", sort=False).head(args.limit)
        device = params.resolved_device()
        groups, windows = {}, 0
        for group, kinds in GROUPS.items():
            part = sources[sources["kind"].isin(kinds)]
            if group != "rir" and not part.empty:
                groups[group], w = bare_times(group, part, params, options, device)
                windows += w
        report: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": device,
                        "load_average_1min_before": round(load_before[0], 2)},
            "sources": str(manifest), "rows_by_kind": sources["kind"].value_counts().sort_index().to_dict(),
            "bare_scorers_conditions": "one process, one thread, the stage's length-bucketed batches",
            "groups": groups,
        }
        dnsmos = groups.get("speech", {}).get("scorers", {}).get("dnsmos")
        if dnsmos and windows:
            macs = dnsmos_macs(options["dnsmos"])
            speech = groups["speech"]
            per_window, cpu_per_window = dnsmos["seconds"] / windows, dnsmos["cpu_seconds"] / windows
            others_cpu = speech["scorers_total"]["cpu_seconds"] - dnsmos["cpu_seconds"]
            report["dnsmos"] = {
                "windows": windows, "seconds_per_window": round(per_window, 4),
                "cpu_seconds_per_window": round(cpu_per_window, 4),
                "gmac_per_window": round(macs / 1e9, 3),
                "gflop_per_cpu_second": round(2 * macs / 1e9 / cpu_per_window, 1),
                "share_of_speech_scorer_cpu_time": round(dnsmos["cpu_seconds"] / speech["scorers_total"]["cpu_seconds"], 3),
                "other_speech_scorers_times_realtime_per_cpu_second": round(speech["audio_seconds"] / max(others_cpu, 1e-9), 1),
                # one window per source while it is shorter than 9.01 s (max_windows 1): the cost is per source
                "speech_scorers_times_realtime_per_cpu_second_by_mean_duration": {
                    f"{d}s": round(1.0 / (cpu_per_window / d + max(others_cpu, 1e-9) / speech["audio_seconds"]), 1)
                    for d in (3.0, 5.0, 8.0, 9.01, 15.0)},
            }
        if not args.skip_stage:
            with tempfile.TemporaryDirectory() as work:
                t0, c0 = time.perf_counter(), cpu_seconds()
                result = score_sources(sources, params, options, ref_quality, Path(work) / "shards")
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            audio = sum(s.audio_seconds for s in result.summaries)
            workers = max(g.workers for g in result.groups)
            report["stage"] = {"workers": workers, "wall_seconds": round(wall, 3), "audio_seconds": round(audio, 2),
                               "times_realtime": round(audio / wall, 2),
                               "times_realtime_per_core": round(audio / wall / workers, 2),
                               "cpu_seconds": round(cpu, 3), "times_realtime_per_cpu_second": round(audio / cpu, 2)}
        report["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

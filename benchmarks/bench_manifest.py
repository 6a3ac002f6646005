"""Manifest build throughput (files/s) on N short files, beside Lhotse's ``Recording.from_file``.

Writes N short WAV files plus official lists (wav.scp, utt2fs, speech_length.scp) into a temporary folder,
then times, in one run:

- ``one_worker`` (like for like): our importer with one worker in each ``dataset.audio_check`` mode (lists:
  trust the lists; header: read each header; decode: decode each file and check NaN/silence) and Lhotse reading
  every file's header with ``Recording.from_file`` in a loop, also one process;
- ``ours_<N>_workers``: our importer in the header and decode modes with ``--workers`` processes (Lhotse has no
  parallel equivalent here), reported apart.

Every entry names its worker count; ``conditions`` gives the files, the machine and its load average before and
after (a shared machine slows every figure). Prints one JSON object on stdout.

    python benchmarks/bench_manifest.py [--files 10000] [--seconds 0.5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from curator.datasets.official import CheckConfig, import_split

SR = 16000
SILENCE_PEAK = 1e-4


def make_files(root: Path, n: int, seconds: float) -> list[Path]:
    rng = np.random.default_rng(0)
    lists = {"wav.scp": [], "utt2fs": [], "speech_length.scp": []}
    paths = []
    length = int(SR * seconds)
    for i in range(n):
        rel = f"audio/{i // 1000}/utt{i:06d}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / rel), (0.1 * rng.standard_normal(length)).astype(np.float32), SR, subtype="PCM_16")
        lists["wav.scp"].append(f"utt{i:06d} {rel}")
        lists["utt2fs"].append(f"utt{i:06d} {SR}")
        lists["speech_length.scp"].append(f"utt{i:06d} {length}")
        paths.append(root / rel)
    (root / "lists").mkdir()
    for name, lines in lists.items():
        (root / "lists" / name).write_text("\n".join(lines) + "\n")
    return paths


def time_ours(root: Path, mode: str, workers: int) -> dict:
    start = time.perf_counter()
    res = import_split("train", root / "lists", None, root, "bench",
                       CheckConfig(mode=mode, silence_peak=SILENCE_PEAK, workers=workers))
    dt = time.perf_counter() - start
    assert not res.rejected, res.rejected[:3]
    return {"workers": workers, "seconds": round(dt, 3), "files_per_s": round(len(res.rows) / dt, 1)}


def time_lhotse(paths: list[Path]) -> dict:
    from lhotse import Recording

    start = time.perf_counter()
    for p in paths:
        Recording.from_file(p)
    dt = time.perf_counter() - start
    return {"workers": 1, "seconds": round(dt, 3), "files_per_s": round(len(paths) / dt, 1)}


def conditions(args: argparse.Namespace) -> dict:
    import lhotse

    return {"files": args.files, "seconds_per_file": args.seconds, "format": f"wav PCM_16 mono {SR} Hz",
            "cpu_count": os.cpu_count(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "python": platform.python_version(), "lhotse": lhotse.__version__,
            "load_avg_1min_before": round(os.getloadavg()[0], 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10000, help="number of short files (default 10000)")
    ap.add_argument("--seconds", type=float, default=0.5, help="duration of each file (default 0.5 s)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of our importer in the separate "
                    "multi-worker entry (default 2; the like-for-like entry always uses 1)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_manifest_"))
    try:
        paths = make_files(root, args.files, args.seconds)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            result = {"conditions": conditions(args)}
            result["one_worker"] = {
                "ours_lists": time_ours(root, "lists", 1),
                "ours_header": time_ours(root, "header", 1),
                "ours_decode": time_ours(root, "decode", 1),
                "lhotse_recording_from_file": time_lhotse(paths),
            }
            if args.workers > 1:
                result[f"ours_{args.workers}_workers"] = {
                    "ours_header": time_ours(root, "header", args.workers),
                    "ours_decode": time_ours(root, "decode", args.workers),
                }
            result["conditions"]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
        finally:
            os.chdir(cwd)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

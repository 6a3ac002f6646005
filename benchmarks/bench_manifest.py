"""Manifest build throughput (files/s) on N short files, beside Lhotse's ``Recording.from_file``.

Writes N short WAV files plus official lists (wav.scp, utt2fs, speech_length.scp) into a temporary folder,
then times, in one run: our importer in each ``dataset.audio_check`` mode (lists: trust the lists;
header: read each header; decode: decode each file and check NaN/silence) and Lhotse reading every file's
header with ``Recording.from_file`` in a loop. Prints one JSON object on stdout.

    python benchmarks/bench_manifest.py [--files 10000] [--seconds 0.5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
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
    res = import_split("train", root / "lists", None, root, "bench", CheckConfig(mode, SILENCE_PEAK, workers))
    dt = time.perf_counter() - start
    assert not res.rejected, res.rejected[:3]
    return {"seconds": round(dt, 3), "files_per_s": round(len(res.rows) / dt, 1)}


def time_lhotse(paths: list[Path]) -> dict:
    from lhotse import Recording

    start = time.perf_counter()
    for p in paths:
        Recording.from_file(p)
    dt = time.perf_counter() - start
    return {"seconds": round(dt, 3), "files_per_s": round(len(paths) / dt, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10000, help="number of short files (default 10000)")
    ap.add_argument("--seconds", type=float, default=0.5, help="duration of each file (default 0.5 s)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of our importer (default 2)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_manifest_"))
    try:
        paths = make_files(root, args.files, args.seconds)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            result = {
                "files": args.files, "seconds_per_file": args.seconds, "workers": args.workers,
                "cpu_count": os.cpu_count(),
                "ours_lists": time_ours(root, "lists", args.workers),
                "ours_header": time_ours(root, "header", args.workers),
                "ours_decode": time_ours(root, "decode", args.workers),
                "ours_header_1worker": time_ours(root, "header", 1),
                "lhotse_recording_from_file": time_lhotse(paths),
            }
        finally:
            os.chdir(cwd)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

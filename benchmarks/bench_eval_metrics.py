"""Times-realtime of every available evaluation metric on CPU, printed as JSON.

Usage: ``python benchmarks/bench_eval_metrics.py [--seconds 4] [--sr 16000] [--utts 4] [--threads 1]``.
Input: speech-like references with white noise at 5 dB SNR as estimates. Each metric runs once on one
utterance first (model loading, numba compilation), then is timed on ``--utts`` utterances, in-process
(no process pool). Unavailable metrics are listed with their reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--utts", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--metrics", nargs="*", default=None, help="names (default: every registered metric)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from compare_official_metrics import degrade, speechlike
    from curator.evaluation.metrics import METRICS, compute_metrics, split_available

    rng = np.random.default_rng(0)
    refs = [speechlike(args.sr, args.seconds, rng) for _ in range(args.utts)]
    ests = [degrade(r, args.sr, "noise_5", rng) for r in refs]
    srs = np.full(args.utts, args.sr)
    metrics, unavailable = split_available([METRICS.get(m) for m in (args.metrics or METRICS.names())])
    results = {}
    for m in metrics:
        compute_metrics([m], ests[:1], refs[:1], srs[:1], pool=None)  # warm-up: load, compile
        t = time.perf_counter()
        compute_metrics([m], ests, refs, srs, pool=None)
        elapsed = time.perf_counter() - t
        results[m.name] = {"x_realtime": round(args.utts * args.seconds / elapsed, 2),
                           "seconds_per_audio_second": round(elapsed / (args.utts * args.seconds), 5)}
    print(json.dumps({"conditions": {"audio_seconds_per_utt": args.seconds, "sr": args.sr, "utts": args.utts,
                                     "threads": args.threads, "device": "cpu", "cpu_count": os.cpu_count()},
                      "metrics": results, "unavailable": unavailable}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

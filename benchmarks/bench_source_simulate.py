"""Throughput of simulating from a source selection; prints JSON.

- ``plan``: :func:`curator.datasets.simulation.plan.plan_simulation` rows per second over pools the size of the
  URGENT lists (no audio is read: planning only draws ids and parameters), the noise and RIR pools indexed by
  rate once per simulation;
- ``dynamic_mixing``: examples per second of :class:`curator.training.data.DynamicMixingDataset` (one example:
  draw, read the speech crop, render noisy and target in memory), on synthetic 16 kHz sources in a temp folder,
  one process (a DataLoader with N workers runs N of these).

  python benchmarks/bench_source_simulate.py --speech 20000 --noise 60000 --rir 60000 --examples 50
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from curator.config import DEFAULT_PARAMS, load_params, load_section
from curator.datasets.kaldi import SourceEntry
from curator.datasets.simulation.plan import plan_simulation
from curator.datasets.simulation.sources import Sources
from curator.training.data import DynamicMixing, DynamicMixingDataset

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
SR = 16000


def bench_plan(sim, n_speech: int, n_noise: int, n_rir: int) -> dict:
    speech = {f"s{i}": SourceEntry(f"s{i}", RATES[i % len(RATES)], "x") for i in range(n_speech)}
    noise = {f"n{i}": SourceEntry(f"n{i}", RATES[i % len(RATES)], "x") for i in range(n_noise)}
    rir = {f"r{i}": SourceEntry(f"r{i}", 48000, "x") for i in range(n_rir)}
    sources = Sources(Path(), speech, noise, {}, rir, lengths=dict.fromkeys(speech, 5 * SR))
    t = time.perf_counter()
    rows = plan_simulation(sources, sim, "audio")
    dt = time.perf_counter() - t
    return {"speech": n_speech, "noise": n_noise, "rir": n_rir, "rows": len(rows), "seconds": round(dt, 3),
            "rows_per_s": round(len(rows) / dt, 1)}


def bench_mixing(sim, n_examples: int, crop_samples: int) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def clip(kind: str, uid: str, x: np.ndarray) -> SourceEntry:
            path = root / f"{kind}_{uid}.flac"
            sf.write(path, x.astype(np.float32), SR)
            return SourceEntry(uid, SR, str(path))

        t = np.arange(8 * SR) / SR
        speech = {f"s{i}": clip("speech", f"s{i}", 0.3 * np.sin(2 * np.pi * (150 + 10 * i) * t) * (np.sin(3 * t) > 0))
                  for i in range(16)}
        noise = {f"n{i}": clip("noise", f"n{i}", rng.normal(0, 0.1, 10 * SR)) for i in range(8)}
        rir = {}
        for i in range(4):
            h = rng.normal(0, 1, SR // 2) * np.exp(-np.arange(SR // 2) / (SR * 0.05))
            h[0] = 3
            rir[f"r{i}"] = clip("rir", f"r{i}", h / np.abs(h).max())
        sources = Sources(root, speech, noise, {}, rir)
        sources.lengths = sources.read_lengths()
        rows = pd.DataFrame({"speech_uid": list(speech), "sr": SR, "duration_sec": 8.0})
        ds = DynamicMixingDataset(rows, DynamicMixing(sources, sim, 0, "-", None), None, crop_samples)
        ds[(0, 0.0, 0)]  # warm-up (imports, caches)
        start = time.perf_counter()
        for k in range(n_examples):
            ds[(k % len(rows), 0.5, k // len(rows))]
        dt = time.perf_counter() - start
    return {"examples": n_examples, "crop_samples": crop_samples, "sr": SR, "seconds": round(dt, 3),
            "examples_per_s": round(n_examples / dt, 2),
            "audio_x_realtime": round(n_examples * crop_samples / SR / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_PARAMS)
    ap.add_argument("--speech", type=int, default=20000)
    ap.add_argument("--noise", type=int, default=60000)
    ap.add_argument("--rir", type=int, default=60000)
    ap.add_argument("--examples", type=int, default=50)
    ap.add_argument("--crop-samples", type=int, default=96000)
    args = ap.parse_args()
    sim = load_section("simulation", cfg=load_params(args.config))
    print(json.dumps({"plan": bench_plan(sim, args.speech, args.noise, args.rir),
                      "dynamic_mixing": bench_mixing(sim, args.examples, args.crop_samples)}, indent=2))


if __name__ == "__main__":
    main()

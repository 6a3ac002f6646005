"""Inference cost of the enhancement models (what ``curator enhance`` and the eval stage pay per utterance), beside
the official baseline's own BSRNN when ESPnet is importable.

For each model variant (those of ``bench_train.py``), sampling rate and precision: one ``--seconds`` signal at
batch 1 through the model's forward under ``torch.inference_mode`` (FlowSE: its Euler sampler, all its steps),
timed over ``--steps`` runs after one warm-up: median wall time, seconds of audio per second, peak memory (CUDA
allocator peak on a GPU, process max RSS on CPU). With ``espnet-official`` in the same run, each row gets
``x_official``: its speed over the official model's at the same rate and precision.

The issue's table ("10 s inference at 48 kHz") on a GPU::

    python benchmarks/bench_enhance.py --device cuda --models bsrnn-official espnet-official flowse-official \\
        --sr 16000 48000 --precision 32 bf16 --steps 5 --matmul-precision high

On CPU (shared machines give upper bounds; the load average is recorded)::

    python benchmarks/bench_enhance.py --models bsrnn-mini-official bsrnn-official espnet-official --seconds 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

from bench_train import ALL, build, espnet_model  # noqa: E402  (puts src/ on the path)

BYTES_PER_KIB = 1024


def bench(name: str, args: argparse.Namespace, sr: int, precision: str) -> dict:
    """One variant's timed forward passes on a ``args.seconds`` signal at ``sr``."""
    torch.manual_seed(0)
    built = build(name)
    assert built is not None
    model = built[0].to(args.device).eval()
    x = 0.1 * torch.randn(1, int(args.seconds * sr), device=args.device)
    autocast = (torch.autocast(device_type=torch.device(args.device).type, dtype=torch.bfloat16)
                if precision == "bf16" else contextlib.nullcontext())
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def run() -> float:
        start = time.perf_counter()
        with torch.inference_mode(), autocast:
            model(x, sr)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    try:
        run()  # warm-up: kernel choice, allocator, lazy buffers
        times = [run() for _ in range(args.steps)]
    except (RuntimeError, ValueError) as exc:  # a rate the model refuses, bf16 where a kernel lacks it, memory
        return {"model": name, "sr": sr, "precision": precision, "error": f"{type(exc).__name__}: {exc}"[:300]}
    wall = statistics.median(times)
    peak = (torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * BYTES_PER_KIB / 2**30)
    return {"model": name, "sr": sr, "precision": precision, "seconds_audio": args.seconds,
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "wall_ms": round(wall * 1e3, 1), "x_realtime": round(args.seconds / wall, 1),
            "peak_gib": round(peak, 2)}


def compare(results: list[dict]) -> None:
    """Add ``x_official`` (speed over the official model's at the same rate and precision) to each row."""
    official = {(r["sr"], r["precision"]): r["wall_ms"] for r in results
                if r["model"] == "espnet-official" and "wall_ms" in r}
    for r in results:
        key = (r.get("sr"), r.get("precision"))
        if "wall_ms" in r and key in official and r["model"] != "espnet-official":
            r["x_official"] = round(official[key] / r["wall_ms"], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", nargs="+", choices=ALL,
                    default=["bsrnn-mini-official", "bsrnn-official", "espnet-official"])
    ap.add_argument("--sr", nargs="+", type=int, default=[16000, 48000])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the enhanced signal")
    ap.add_argument("--steps", type=int, default=3, help="timed runs after one warm-up run")
    ap.add_argument("--precision", nargs="+", choices=["32", "bf16"], default=["32"])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (eval.num_threads)")
    ap.add_argument("--onednn", choices=["on", "off"], default="off",
                    help="torch's oneDNN CPU kernels (eval.onednn; off: what the eval stage runs)")
    ap.add_argument("--matmul-precision", choices=["highest", "high", "medium"], default="highest")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.mkldnn.enabled = args.onednn == "on"
    torch.set_float32_matmul_precision(args.matmul_precision)
    load_before = round(os.getloadavg()[0], 2)
    results: list[dict] = []
    for name in args.models:
        if name == "espnet-official" and espnet_model() is None:
            results.append({"model": name, "skipped": "espnet2 is not importable here"})
            continue
        for precision in args.precision:
            for sr in args.sr:
                results.append(bench(name, args, sr, precision))
                print(json.dumps(results[-1]), file=sys.stderr)
    compare(results)
    print(json.dumps({
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "threads": args.threads,
        "onednn": args.onednn, "matmul_precision": args.matmul_precision,
        "load_avg_1min_before": load_before, "load_avg_1min": round(os.getloadavg()[0], 2), "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()

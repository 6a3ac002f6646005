"""Where one training step of a model variant spends its time: torch.profiler over ``--steps`` steps after warm-up.

Prints JSON: the variant, the setting, the profiled steps' wall time, and the top ``--top`` operators by self
time on the device (CUDA self time on a GPU, CPU self time on CPU), each with its call count and share of the
total, and ``calls_per_step``: the events with self time per step (on a GPU the kernels and copies launched,
which bound a small batch's step; on CPU the operators run); ``--table`` writes the profiler's own table too. The
variants and the step (forward, loss, backward, clipping, AdamW) are those of ``bench_train.py``. usage:
  python benchmarks/profile_step.py [--model bsrnn-official] [--device cpu|cuda] [--batch 4] [--samples 96000]
                                    [--sr 16000] [--precision 32|bf16] [--steps 2] [--top 25] [--table FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import ALL, build, train_step  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bsrnn-official", choices=ALL)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--samples", type=int, default=16000, help="samples per example (official crop: 96000)")
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--precision", choices=["32", "bf16"], default="32")
    ap.add_argument("--steps", type=int, default=2, help="profiled steps (after one warm-up step)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--matmul-precision", choices=["highest", "high", "medium"], default="highest")
    ap.add_argument("--table", type=Path, help="also write the profiler's table here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    torch.manual_seed(0)
    built = build(args.model)
    if built is None:
        raise SystemExit(f"{args.model}: espnet2 is not importable here")
    model, loss_fn = built
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)
    noisy = torch.randn(args.batch, args.samples, device=device) * 0.1
    clean = noisy * 0.5
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    def step() -> None:
        train_step(model, opt, loss_fn, noisy, clean, args.sr, autocast)

    step()  # warm-up: allocator, cuDNN plans, lazy initialisation
    if cuda:
        torch.cuda.synchronize()
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    t0 = time.perf_counter()
    with profile(activities=activities, record_shapes=False) as prof:
        for _ in range(args.steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / args.steps
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    total = sum(getattr(e, key) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    top = [{"op": e.key, "calls": e.count // args.steps, "self_ms_per_step": round(getattr(e, key) / 1000 / args.steps, 3),
            "share": round(getattr(e, key) / total, 4)} for e in events[:args.top]]
    if args.table:
        args.table.write_text(prof.key_averages().table(sort_by=key, row_limit=60))
    print(json.dumps({"model": args.model, "device": str(device), "batch": args.batch, "samples": args.samples,
                      "sr": args.sr, "precision": args.precision, "profiled_steps": args.steps,
                      "step_ms_under_profiler": round(1000 * wall, 1),
                      "device_self_ms_per_step": round(total / 1000 / args.steps, 3),
                      "calls_per_step": sum(e.count for e in events) // args.steps,
                      "top": top}, indent=1))


if __name__ == "__main__":
    main()

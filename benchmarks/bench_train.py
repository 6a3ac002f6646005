"""Training-step cost of the enhancement models: the official BSRNN recipe beside this project's variant.

For each model variant: parameter count, and one training step (forward, loss, backward, gradient clipping,
AdamW step) on a random batch at one sampling rate, timed over ``--steps`` steps after one warm-up step: median
wall time, median process CPU time (less sensitive to other load on a shared machine), seconds of audio per
second of wall time, peak memory (CUDA allocator peak on a GPU, process max RSS on CPU).

Variants (``--models``):
- ``bsrnn-official``: ``bsrnn`` at its defaults (the official architecture and size, 37.8 M) with the official
  loss (rectangular windows, summed L1 terms);
- ``bsrnn-ours``: the same size with this project's options (``residual_mask: false``, ``norm: frame``,
  ``input_rms_norm: true``, ``stft_pad_mode: constant``) and loss (Hann windows, mean L1 terms);
- ``bsrnn-mini-official`` / ``bsrnn-mini-ours``: the same two at the mini profile's size (params.yaml);
- ``flowse-official`` / ``flowse-mini``: FlowSE's flow-matching step at the official size (384 x 6) and at the
  mini profile's size (params.yaml ``train.model.flowse``);
- ``espnet-official``: the official baseline's own model (ESPnet ``BSRNNSeparator`` between its STFT encoder
  and decoder, 20 ms / 10 ms at every rate), when ``espnet2`` is importable, with the official loss.

Every variant runs for each ``--batch`` (``max``: the largest batch that fits on the GPU, found by doubling
from 4 until the allocator runs out), each ``--precision`` (``32``; ``bf16``: autocast) and each ``--compile``
(``off``; ``on``: ``torch.compile``, its compilation inside the warm-up step, not timed). With
``espnet-official`` in the same run, each row also gets ``x_official``: its throughput over the official
model's at the same batch, precision and compile setting.

The figures of a shared CPU are upper bounds (the 1-minute load average is recorded); GPU figures need
``--device cuda``. usage:
  python benchmarks/bench_train.py [--device cpu] [--batch 2 ...|max] [--samples 16000] [--sr 16000] [--steps 3]
                                   [--models bsrnn-official bsrnn-ours ...] [--precision 32 bf16] [--compile off on]
                                   [--threads 2] [--matmul-precision highest|high|medium] [--cudnn-benchmark]
                                   [--onednn on off] [--fused] [--pinned]
The cost of the portable CPU training (the train stage's pins, oneDNN off, fused AdamW) against oneDNN:
  python benchmarks/bench_train.py --models bsrnn-mini-official --batch 4 --samples 32000 --steps 10 \
      --onednn on off --fused --pinned
The issue's GPU table (official size, 2 s crops at 48 kHz, beside the official model):
  python benchmarks/bench_train.py --device cuda --models bsrnn-official espnet-official --batch 4 max \
      --samples 96000 --sr 48000 --precision 32 bf16 --compile off on --steps 5 --matmul-precision high
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
if "--pinned" in sys.argv:  # before torch loads: its kernels are chosen then
    from curator.determinism import configure_environment

    configure_environment(threads=1)

import torch  # noqa: E402
import yaml  # noqa: E402

from curator.training.loss import MultiResL1SpecLoss  # noqa: E402
from curator.training.models import build_model  # noqa: E402

OURS = {"residual_mask": False, "norm": "frame", "input_rms_norm": True, "stft_pad_mode": "constant"}
WINDOWS = [256, 512, 768, 1024]
ALL = ["bsrnn-official", "bsrnn-ours", "bsrnn-mini-official", "bsrnn-mini-ours", "flowse-official", "flowse-mini",
       "espnet-official"]


def mini_options() -> tuple[dict, dict]:
    train = yaml.safe_load((REPO / "params.yaml").read_text())["train"]["model"]
    size = {k: train["options"][k] for k in ("num_channels", "num_layers")}
    return size, dict(train["flowse"])


def espnet_model() -> torch.nn.Module | None:
    """The official baseline's BSRNN assembled from ESPnet's classes, or None when espnet2 is missing."""
    try:
        from espnet2.enh.decoder.stft_decoder import STFTDecoder
        from espnet2.enh.encoder.stft_encoder import STFTEncoder
        from espnet2.enh.separator.bsrnn_separator import BSRNNSeparator
    except ImportError:
        return None

    class Official(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = STFTEncoder(n_fft=960, hop_length=480, use_builtin_complex=True, default_fs=48000)
            self.decoder = STFTDecoder(n_fft=960, hop_length=480, default_fs=48000)
            self.separator = BSRNNSeparator(input_dim=481, num_spk=1, num_channels=196, num_layers=6,
                                            target_fs=48000, causal=False)

        def forward(self, noisy: torch.Tensor, sr: int) -> torch.Tensor:
            lengths = torch.full((noisy.shape[0],), noisy.shape[1], dtype=torch.long, device=noisy.device)
            spec, flens = self.encoder(noisy, lengths, fs=sr)
            est, _, _ = self.separator(spec, flens, {"fs": sr})
            return self.decoder(est[0], lengths, fs=sr)[0]

    return Official()


def build(name: str) -> tuple[torch.nn.Module, Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor]] | None:
    official_loss = MultiResL1SpecLoss(WINDOWS, 0.5, window="rect", reduction="sum")
    our_loss = MultiResL1SpecLoss(WINDOWS, 0.5, window="hann", reduction="mean")
    size, flowse = mini_options()

    def regression(loss: MultiResL1SpecLoss) -> Callable:
        return lambda m, noisy, clean, sr: loss.to(noisy.device)(m(noisy, sr), clean)

    def flow(m: torch.nn.Module, noisy: torch.Tensor, clean: torch.Tensor, sr: int) -> torch.Tensor:
        return m.training_loss(noisy, clean, sr)

    if name == "bsrnn-official":
        return build_model("bsrnn", {}), regression(official_loss)
    if name == "bsrnn-ours":
        return build_model("bsrnn", OURS), regression(our_loss)
    if name == "bsrnn-mini-official":
        return build_model("bsrnn", size), regression(official_loss)
    if name == "bsrnn-mini-ours":
        return build_model("bsrnn", {**size, **OURS}), regression(our_loss)
    if name == "flowse-official":
        return build_model("flowse", {}), flow
    if name == "flowse-mini":
        return build_model("flowse", flowse), flow
    if name == "espnet-official":
        model = espnet_model()
        return None if model is None else (model, regression(official_loss))
    raise SystemExit(f"unknown model variant {name!r}; choose from {', '.join(ALL)}")


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable, noisy: torch.Tensor,
               clean: torch.Tensor, sr: int, autocast: contextlib.AbstractContextManager) -> torch.Tensor:
    """One step of the official recipe: forward and loss (under ``autocast``), backward, gradient clipping to
    0.5, AdamW step; returns the loss."""
    opt.zero_grad(set_to_none=True)
    with autocast:
        loss = loss_fn(model, noisy, clean, sr)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
    return loss


def bench(name: str, args: argparse.Namespace, batch: int, precision: str, compiled: bool) -> dict:
    """One variant's timed training steps at ``batch``, ``precision`` (32 | bf16) and with or without compile."""
    torch.manual_seed(0)
    built = build(name)
    if built is None:
        return {"model": name, "skipped": "espnet2 is not importable here"}
    model, loss_fn = built
    device = torch.device(args.device)
    model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    row = {"model": name, "params": n_params, "batch": batch, "precision": precision, "compile": compiled}
    if compiled:
        model.compile()  # in place: parameters (and their count) are the plain model's
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6, fused=args.fused or None)
    row["onednn"] = torch.backends.mkldnn.enabled
    noisy = torch.randn(batch, args.samples, device=device) * 0.1
    clean = noisy * 0.5
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    walls, cpus = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        for i in range(args.steps + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            w0, c0 = time.perf_counter(), time.process_time()
            loss = train_step(model, opt, loss_fn, noisy, clean, args.sr, autocast)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up allocators and kernels
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
    except torch.cuda.OutOfMemoryError:
        del model, opt, noisy, clean
        torch.cuda.empty_cache()
        return {**row, "oom": True}
    except (RuntimeError, ValueError) as exc:
        return {**row, "failed": f"{type(exc).__name__}: {str(exc)[:200]}"}
    wall = statistics.median(walls)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {**row, "step_ms": round(1000 * wall, 1), "cpu_ms": round(1000 * statistics.median(cpus), 1),
            "audio_x_realtime": round(batch * args.samples / args.sr / wall, 2),
            "peak_mem_gib": round(peak / 2**30, 3), "loss": float(loss.detach())}


def largest_batch(name: str, args: argparse.Namespace, precision: str, compiled: bool) -> list[dict]:
    """Rows at batch 4, 8, 16, ... up to ``--max-batch`` until one runs out of GPU memory; the last row that
    fitted is marked ``largest_fitting``."""
    rows: list[dict] = []
    batch = 4
    while batch <= args.max_batch:
        row = bench(name, args, batch, precision, compiled)
        print(json.dumps(row), file=sys.stderr)
        if row.get("oom") or "step_ms" not in row:
            if not row.get("oom"):
                rows.append(row)
            break
        rows.append(row)
        batch *= 2
    fitted = [r for r in rows if "step_ms" in r]
    if fitted:
        fitted[-1]["largest_fitting"] = True
    return rows


def compare(results: list[dict]) -> dict:
    """Each row's throughput over the official model's (same batch, precision, compile), and the issue's goals."""
    key = lambda r: (r["batch"], r["precision"], r["compile"], r.get("onednn"))  # noqa: E731
    official = {key(r): r["audio_x_realtime"] for r in results
                if r["model"] == "espnet-official" and "audio_x_realtime" in r}
    for r in results:
        if "audio_x_realtime" in r and r["model"] != "espnet-official" and key(r) in official:
            r["x_official"] = round(r["audio_x_realtime"] / official[key(r)], 2)
    ours = [r for r in results if r["model"] == "bsrnn-official" and "audio_x_realtime" in r]
    goals: dict = {}
    at4 = [r["x_official"] for r in ours if r["batch"] == 4 and r["precision"] == "32" and not r["compile"]
           and "x_official" in r]
    if at4:
        goals["x_official_batch4_fp32"] = at4[0]
        goals["goal_2x_official_batch4"] = at4[0] >= 2.0
    if ours:
        best = max(ours, key=lambda r: r["audio_x_realtime"])
        goals["best_audio_x_realtime"] = best["audio_x_realtime"]
        goals["best_setting"] = {k: best[k] for k in ("batch", "precision", "compile")}
        goals["goal_400x_realtime"] = best["audio_x_realtime"] >= 400
    return goals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", nargs="+", default=["2"],
                    help="batch sizes; 'max' = the largest that fits (GPU only: doubling from 4 until out of memory)")
    ap.add_argument("--max-batch", type=int, default=512, help="upper bound of the 'max' search")
    ap.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off"])
    ap.add_argument("--matmul-precision", choices=["highest", "high", "medium"], default="highest",
                    help="torch.set_float32_matmul_precision (train.matmul_precision)")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark (train.cudnn_benchmark)")
    ap.add_argument("--samples", type=int, default=16000, help="samples per example (official crop: 96000)")
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--precision", nargs="+", choices=["32", "bf16"], default=["32"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--onednn", nargs="+", choices=["on", "off"], default=["on"],
                    help="torch's oneDNN CPU kernels (train.onednn; off: ATen's own, the same results on every CPU)")
    ap.add_argument("--fused", action="store_true", help="torch's fused AdamW (train.optim.fused)")
    ap.add_argument("--pinned", action="store_true",
                    help="the train stage's numeric environment (curator.determinism: AVX2 kernels of ATen, MKL, "
                         "oneDNN), set before torch loads")
    ap.add_argument("--models", nargs="+", default=["bsrnn-official", "bsrnn-ours", "bsrnn-mini-official",
                                                     "bsrnn-mini-ours", "flowse-mini", "espnet-official"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if "max" in args.batch and args.device == "cpu":
        raise SystemExit("--batch max searches GPU memory; give explicit batch sizes on CPU")
    batches = [b for b in args.batch if b != "max"]
    if not all(b.isdigit() and int(b) > 0 for b in batches):
        raise SystemExit(f"--batch takes positive integers or 'max', got {args.batch}")
    load_before = round(os.getloadavg()[0], 2)
    results: list[dict] = []
    for name in args.models:
        if name == "espnet-official" and espnet_model() is None:
            results.append({"model": name, "skipped": "espnet2 is not importable here"})
            continue
        for precision in args.precision:
            for compiled in args.compile:
                for onednn in args.onednn:
                    torch.backends.mkldnn.enabled = onednn == "on"
                    # peak RSS is per process: each CPU figure includes the runs before it (run one variant at a
                    # time with --models for a clean memory figure); the CUDA peak is reset per run
                    for batch in batches:
                        results.append(bench(name, args, int(batch), precision, compiled == "on"))
                        print(json.dumps(results[-1]), file=sys.stderr)
                    if "max" in args.batch:
                        results += largest_batch(name, args, precision, compiled == "on")
    goals = compare(results)
    print(json.dumps({
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "threads": args.threads,
        "load_avg_1min_before": load_before, "load_avg_1min": round(os.getloadavg()[0], 2),
        "samples": args.samples, "sr": args.sr, "matmul_precision": args.matmul_precision,
        "cudnn_benchmark": args.cudnn_benchmark, "fused_adamw": args.fused, "pinned": args.pinned,
        "results": results, "goals": goals,
    }, indent=2))


if __name__ == "__main__":
    main()

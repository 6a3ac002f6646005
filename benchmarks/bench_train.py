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

The figures of a shared CPU are upper bounds (the 1-minute load average is recorded); GPU figures need
``--device cuda``. usage:
  python benchmarks/bench_train.py [--device cpu] [--batch 2] [--samples 16000] [--sr 16000] [--steps 3]
                                   [--models bsrnn-official bsrnn-ours ...] [--precision 32|bf16] [--threads 2]
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

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

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


def bench(name: str, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    built = build(name)
    if built is None:
        return {"model": name, "skipped": "espnet2 is not importable here"}
    model, loss_fn = built
    device = torch.device(args.device)
    model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)
    noisy = torch.randn(args.batch, args.samples, device=device) * 0.1
    clean = noisy * 0.5
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())
    walls, cpus = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        for i in range(args.steps + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            w0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model, noisy, clean, args.sr)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up allocators and kernels
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
    except (RuntimeError, ValueError) as exc:
        return {"model": name, "params": n_params, "failed": f"{type(exc).__name__}: {str(exc)[:200]}"}
    wall = statistics.median(walls)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"model": name, "params": n_params, "step_ms": round(1000 * wall, 1),
            "cpu_ms": round(1000 * statistics.median(cpus), 1),
            "audio_x_realtime": round(args.batch * args.samples / args.sr / wall, 2),
            "peak_mem_gib": round(peak / 2**30, 3), "loss": float(loss.detach())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--samples", type=int, default=16000, help="samples per example (official crop: 96000)")
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--precision", choices=["32", "bf16"], default="32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["bsrnn-official", "bsrnn-ours", "bsrnn-mini-official",
                                                     "bsrnn-mini-ours", "flowse-mini", "espnet-official"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name in args.models:
        # peak RSS is per process: each variant's figure includes the ones before it on CPU (run one at a
        # time with --models for a clean memory figure)
        results.append(bench(name, args))
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "threads": args.threads,
        "load_avg_1min": round(os.getloadavg()[0], 2), "batch": args.batch, "samples": args.samples, "sr": args.sr,
        "precision": args.precision, "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()

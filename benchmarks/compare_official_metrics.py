"""Compare our intrusive metrics with the official URGENT evaluation script on synthetic pairs.

Usage::

    python benchmarks/compare_official_metrics.py OFFICIAL_CHECKOUT [--official-python PY] [--pairs-per-rate N]

``OFFICIAL_CHECKOUT`` is a checkout of urgent-challenge/urgent2025_challenge (or the 2026 Track 1 repository)
with ``evaluation_metrics/calculate_intrusive_se_metrics.py``. Its functions run unmodified in a subprocess of
``--official-python`` (an environment with what that script imports: pesq, pystoi, fast_bss_eval on numpy < 2,
librosa, soxr, pysptk, fastdtw); nothing of it is copied here. Exits 0 with a message when the checkout is absent.

Pairs: a speech-like reference (harmonic source with a gliding pitch, two formant resonances, syllabic envelope)
degraded by white noise at several SNRs, a synthetic exponential-decay room response, both, band limitation or
clipping, at each of the seven URGENT rates. Prints JSON: per metric the max and mean absolute difference and n,
the too-short behaviour of PESQ and ESTOI side by side, the metrics the checkout's script does not define
(``absent_from_checkout``), and per metric the pairs not compared with the reason (``not_compared``: the official
function raising in that environment, e.g. fast_bss_eval's SDR on numpy >= 2, or no finite value); exits 1 when
any pair of a defined metric was not compared.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DEGRADATIONS = ("noise_-5", "noise_5", "noise_20", "reverb", "reverb_noise_10", "bandlimit", "clip", "noise_0")
SECONDS = 2.5
SHORT_SECONDS = (0.05, 0.2, 0.3)  # inputs shorter than PESQ's and ESTOI's minimum
OFFICIAL_FUNCTIONS = {"pesq": "pesq_metric", "estoi": "estoi_metric", "sdr": "sdr_metric", "lsd": "lsd_metric",
                      "mcd": "mcd_metric"}

# Runs in the official environment: imports the official module from the checkout and scores every pair.
DRIVER = """
import json, math, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[1])
import calculate_intrusive_se_metrics as off
data = np.load(sys.argv[2])
wanted = json.loads(sys.argv[3])
out = []
for i, sr in enumerate(data["srs"]):
    ref = data[f"ref{i}"].astype(np.float32)
    inf = data[f"est{i}"].astype(np.float32)
    row = {}
    for name, fn in wanted.items():
        if not hasattr(off, fn):
            continue
        f = getattr(off, fn)
        try:
            v = f(ref, inf) if name == "sdr" else f(ref, inf, fs=int(sr))
            row[name] = None if v is None or not math.isfinite(float(v)) else float(v)
        except Exception as exc:
            row[name] = "error: " + type(exc).__name__ + ": " + str(exc)[:200]
    out.append(row)
json.dump(out, open(sys.argv[4], "w"))
"""


def speechlike(sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced, formant-shaped, syllable-modulated signal with a low noise floor (no digital silence)."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    n_harm = int(min(40, (0.45 * sr) // 250))
    src = sum(np.sin(k * phase) / k for k in range(1, n_harm + 1))
    for fc, bw in ((rng.uniform(400, 800), 80), (rng.uniform(1100, 2200), 120)):
        r = np.exp(-np.pi * bw / sr)
        src = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], src)
    env = np.clip(np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t + rng.uniform(0, 6)), 0, None) ** 1.5
    x = src * env + 1e-3 * rng.standard_normal(t.size)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def degrade(x: np.ndarray, sr: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``x`` with one synthetic degradation."""
    y = x.astype(np.float64)
    if kind.startswith("reverb"):
        n = int(0.4 * sr)
        rir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / (0.4 * sr))
        rir[0] = 4.0
        y = np.convolve(y, rir)[: len(y)]
        y *= np.max(np.abs(x)) / np.max(np.abs(y))
    if "noise" in kind:
        snr = float(kind.rsplit("_", 1)[1])
        noise = rng.standard_normal(len(y))
        y = y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr / 10))
    if kind == "bandlimit":
        spec = np.fft.rfft(y)
        spec[int(len(spec) * 4000 / (sr / 2)):] = 0
        y = np.fft.irfft(spec, len(y)) + 0.01 * np.std(y) * rng.standard_normal(len(y))
    if kind == "clip":
        lim = np.quantile(np.abs(y), 0.8)
        y = np.clip(y, -lim, lim)
    return y.astype(np.float32)


def make_pairs(per_rate: int, seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for sr in RATES:
        for k in range(per_rate):
            ref = speechlike(sr, SECONDS, rng)
            pairs.append((sr, ref, degrade(ref, sr, DEGRADATIONS[k % len(DEGRADATIONS)], rng)))
    return pairs


def short_pairs(seed: int = 1) -> list[tuple[int, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for sr in (8000, 16000, 48000):
        for s in SHORT_SECONDS:
            ref = speechlike(sr, s, rng)
            out.append((sr, ref, degrade(ref, sr, "noise_10", rng)))
    return out


def ours(pairs: list[tuple[int, np.ndarray, np.ndarray]]) -> list[dict[str, float | None]]:
    from curator.evaluation.metrics import METRICS, compute_metrics

    metrics = [METRICS.get(m) for m in OFFICIAL_FUNCTIONS]
    srs = np.array([sr for sr, _, _ in pairs])
    scores = compute_metrics(metrics, [e for _, _, e in pairs], [r for _, r, _ in pairs], srs, pool=None)
    return [{m: (None if not np.isfinite(v[i]) else float(v[i])) for m, v in scores.items()} for i in range(len(pairs))]


def official(pairs: list[tuple[int, np.ndarray, np.ndarray]], checkout: Path, python: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.npz"
        arrays = {f"ref{i}": r for i, (_, r, _) in enumerate(pairs)} | {f"est{i}": e for i, (_, _, e) in enumerate(pairs)}
        np.savez(data, srs=np.array([sr for sr, _, _ in pairs]), **arrays)
        result = Path(tmp) / "official.json"
        subprocess.run([python, "-c", DRIVER, str(checkout / "evaluation_metrics"), str(data),
                        json.dumps(OFFICIAL_FUNCTIONS), str(result)], check=True)
        return json.loads(result.read_text())


def table(pairs: list, off: list[dict], mine: list[dict]) -> dict[str, dict]:
    out = {}
    for m in OFFICIAL_FUNCTIONS:
        diffs, by_rate = [], {}
        for (sr, _, _), o, y in zip(pairs, off, mine, strict=True):
            if m in o and isinstance(o[m], float) and y[m] is not None:
                d = abs(o[m] - y[m])
                diffs.append(d)
                by_rate[sr] = max(by_rate.get(sr, 0.0), d)
        if diffs:
            out[m] = {"max_abs_diff": float(np.max(diffs)), "mean_abs_diff": float(np.mean(diffs)), "n": len(diffs),
                      "max_abs_diff_by_rate": {str(k): round(v, 6) for k, v in sorted(by_rate.items())}}
    return out


def absent_from_checkout(off: list[dict]) -> list[str]:
    """Metrics whose official function the checkout does not define (the 2026 Track 1 script has only PESQ and
    ESTOI; the 2025 one also SDR, LSD and MCD)."""
    return [m for m in OFFICIAL_FUNCTIONS if off and all(m not in o for o in off)]


def not_compared(off: list[dict], mine: list[dict], absent: list[str]) -> dict[str, dict[str, int]]:
    """Per metric the checkout defines, why pairs were left out of the agreement table: the official function
    raising (its error, as the official environment gave it) or returning no finite value, or ours giving none."""
    out: dict[str, dict[str, int]] = {}
    for m in OFFICIAL_FUNCTIONS:
        if m in absent:
            continue
        why: dict[str, int] = {}
        for o, y in zip(off, mine, strict=True):
            v = o.get(m)
            reason = (v if isinstance(v, str) else "official: no finite value" if v is None
                      else "ours: no finite value" if y[m] is None else None)
            if reason is not None:
                why[reason] = why.get(reason, 0) + 1
        if why:
            out[m] = dict(sorted(why.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkout", type=Path, help="official repository checkout (has evaluation_metrics/)")
    ap.add_argument("--official-python", default=sys.executable, help="python of the official environment")
    ap.add_argument("--pairs-per-rate", type=int, default=8)
    args = ap.parse_args(argv)
    script = args.checkout / "evaluation_metrics" / "calculate_intrusive_se_metrics.py"
    if not script.is_file():
        print(f"skip: no official checkout at {args.checkout} ({script} missing)")
        return 0
    pairs = make_pairs(args.pairs_per_rate)
    short = short_pairs()
    off_all = official(pairs + short, args.checkout, args.official_python)
    mine_all = ours(pairs + short)
    n = len(pairs)
    absent = absent_from_checkout(off_all[:n])
    report = {
        "pairs": n, "rates": list(RATES), "seconds": SECONDS, "degradations": list(DEGRADATIONS),
        "agreement": table(pairs, off_all[:n], mine_all[:n]),
        "absent_from_checkout": absent,
        "not_compared": not_compared(off_all[:n], mine_all[:n], absent),
        "too_short": [{"sr": sr, "seconds": round(len(r) / sr, 3),
                       **{f"official_{m}": off_all[n + i].get(m) for m in ("pesq", "estoi")},
                       **{f"ours_{m}": mine_all[n + i][m] for m in ("pesq", "estoi")}}
                      for i, (sr, r, _) in enumerate(short)],
    }
    print(json.dumps(report, indent=1))
    for m in report["absent_from_checkout"]:
        print(f"note: {m}: the checkout's script has no {OFFICIAL_FUNCTIONS[m]}; not compared", file=sys.stderr)
    for m, why in report["not_compared"].items():  # pairs left out must not look like agreement
        print(f"error: {m}: pairs not compared: {why}", file=sys.stderr)
    return 1 if report["not_compared"] else 0


if __name__ == "__main__":
    sys.exit(main())
